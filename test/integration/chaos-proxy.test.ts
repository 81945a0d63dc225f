/**
 * ChaosProxy in front of the real primary: every fault seen through node-postgres, plus the
 * proxy's own guarantees (loopback only, nothing left running after close()).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { classify, ResilientPool } from '../../src/index.js';
import { ChaosProxy } from '../../src/testing/chaos-proxy.js';
import { FaultInjector } from '../../src/testing/fault-injector.js';
import { isLoopbackHost } from '../../src/testing/loopback.js';
import { useCluster } from '../support/cluster.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 0 });

/**
 * The proxy forwards to loopback only; a DATABASE_URL on another machine cannot be put behind
 * it. Known when the file is collected, so usable in `skipIf`.
 */
const primaryIsLocal = ((): boolean => {
  const external = process.env.DATABASE_URL?.trim();
  if (external === undefined || external === '') return true;
  try {
    return isLoopbackHost(new URL(external).hostname);
  } catch {
    return false;
  }
})();
const NEEDS_LOOPBACK_PRIMARY =
  'needs a primary on this machine; skipped because DATABASE_URL points elsewhere';

/** Bounds for waits that a fault does not make slow on purpose. */
const CONNECT_TIMEOUT_MS = 5_000;
const QUERY_TIMEOUT_MS = 5_000;

const proxies: ChaosProxy[] = [];
const pools: pg.Pool[] = [];

afterEach(async () => {
  for (const proxy of proxies) proxy.heal();
  await Promise.all(
    pools
      .splice(0)
      .map((pool) =>
        Promise.race([pool.end().catch(() => {}), new Promise((r) => setTimeout(r, 2_000))]),
      ),
  );
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

async function startProxy(): Promise<ChaosProxy> {
  const { host, port } = handle.cluster.primary;
  const proxy = await ChaosProxy.start({ target: { host, port } });
  proxies.push(proxy);
  return proxy;
}

/** A pool that reaches the primary through `proxy`, with the primary's credentials. */
function poolVia(proxy: ChaosProxy, config: pg.PoolConfig = {}): pg.Pool {
  const url = new URL(handle.cluster.primary.url);
  const pool = new pg.Pool({
    host: proxy.host,
    port: proxy.port,
    user: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    database: url.pathname.slice(1) || 'postgres',
    max: 4,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    ...config,
  });
  // Resets hit idle clients on purpose; their errors must not end the test process.
  pool.on('error', () => {});
  pools.push(pool);
  return pool;
}

/** The outcome of `promise`, or a failure if it takes longer than `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function elapsed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

describe.skipIf(!primaryIsLocal)(
  `ChaosProxy in front of PostgreSQL (${NEEDS_LOOPBACK_PRIMARY})`,
  () => {
    it('passes queries through and counts bytes and connections', async () => {
      const proxy = await startProxy();
      expect(proxy.host).toBe('127.0.0.1');
      expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);
      const pool = poolVia(proxy);
      const { rows } = await pool.query<{ n: number }>('SELECT 41 + 1 AS n');
      expect(rows).toEqual([{ n: 42 }]);
      await Promise.all([pool.query('SELECT pg_sleep(0.05)'), pool.query('SELECT pg_sleep(0.05)')]);
      const stats = proxy.stats();
      expect(stats.connectionsAccepted).toBe(2);
      expect(stats.connectionsActive).toBe(2);
      expect(stats.connectionsRefused).toBe(0);
      expect(stats.bytesToTarget).toBeGreaterThan(0);
      expect(stats.bytesFromTarget).toBeGreaterThan(0);
      expect(stats.bytesDropped).toBe(0);
      expect(stats.faults).toEqual([]);
      await pool.end();
      await until('the proxy to see both connections close', () => {
        return proxy.stats().connectionsActive === 0;
      });
    });

    it('latency(200) delays each direction; heal() takes it away', async () => {
      const proxy = await startProxy();
      const pool = poolVia(proxy, { max: 1 });
      await pool.query('SELECT 1'); // connected before measuring
      proxy.latency(200);
      expect(proxy.stats().faults).toEqual(['latency 200ms']);
      // A round trip crosses the proxy twice, 200 ms each way; a delay is never cut short, so
      // this lower bound holds however slow the machine is.
      expect(await elapsed(() => pool.query('SELECT 1'))).toBeGreaterThanOrEqual(350);
      proxy.latency(100, 50);
      expect(proxy.stats().faults).toEqual(['latency 100ms ±50ms']);
      await expect(pool.query('SELECT 2 AS n')).resolves.toMatchObject({ rows: [{ n: 2 }] });
      proxy.heal();
      expect(proxy.stats().faults).toEqual([]);
      await expect(pool.query('SELECT 3 AS n')).resolves.toMatchObject({ rows: [{ n: 3 }] });
    });

    it('blackhole(): queries and new connects time out, nothing is closed; heal() restores', async () => {
      const proxy = await startProxy();
      const pool = poolVia(proxy, { query_timeout: 300 });
      const idle = await pool.connect();
      const busy = await pool.connect();
      proxy.blackhole();
      expect(proxy.stats().faults).toEqual(['blackhole']);

      const lost = await within(5_000, 'a black-holed query', busy.query('SELECT 1')).catch(
        (e: unknown) => e,
      );
      expect((lost as Error).message).toMatch(/Query read timeout/);
      busy.release(true);

      const fresh = poolVia(proxy, { connectionTimeoutMillis: 300 });
      const refused = await within(5_000, 'a black-holed connect', fresh.connect()).catch(
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(Error);
      expect(classify(refused)).toMatch(/timeout|connection/);
      // The connection was accepted, then swallowed: counted, never refused.
      expect(proxy.stats()).toMatchObject({ connectionsRefused: 0 });
      expect(proxy.stats().connectionsAccepted).toBe(3);
      expect(proxy.stats().bytesDropped).toBeGreaterThan(0);

      proxy.heal();
      // A connection that only sat idle in the black hole carries traffic again.
      await expect(idle.query('SELECT 1 AS n')).resolves.toMatchObject({ rows: [{ n: 1 }] });
      idle.release();
      await expect(fresh.query('SELECT 2 AS n')).resolves.toMatchObject({ rows: [{ n: 2 }] });
    });

    it('reset(): open connections fail with a connection error; new ones work', async () => {
      const proxy = await startProxy();
      const pool = poolVia(proxy);
      const idleErrors: Error[] = [];
      pool.on('error', (err) => idleErrors.push(err));
      const idle = await pool.connect();
      const client = await pool.connect();
      idle.release(); // one idle client in the pool, one checked out
      client.on('error', () => {});
      const sentBefore = proxy.stats().bytesToTarget;
      const inFlight = client.query('SELECT pg_sleep(5)').catch((e: unknown) => e);
      await until('the statement to reach the server', () => {
        return proxy.stats().bytesToTarget > sentBefore;
      });

      expect(proxy.reset()).toBe(2);
      const err = await within(5_000, 'the in-flight query to fail', inFlight);
      expect(err).toBeInstanceOf(Error);
      expect(classify(err)).toBe('connection');
      client.release(true);
      await until('the idle client to report the reset', () => idleErrors.length > 0, {
        timeoutMs: 5_000,
      });
      expect(classify(idleErrors[0])).toBe('connection');

      await expect(pool.query('SELECT 3 AS n')).resolves.toMatchObject({ rows: [{ n: 3 }] });
      expect(proxy.stats()).toMatchObject({ connectionsReset: 2, faults: [] });
    });

    it('refuse(): new connects fail at once, a checked-out client keeps working', async () => {
      const proxy = await startProxy();
      const pool = poolVia(proxy);
      const held = await pool.connect();
      proxy.refuse();
      expect(proxy.stats().faults).toEqual(['refuse']);
      const fresh = poolVia(proxy);
      const err = await within(5_000, 'a refused connect', fresh.connect()).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect(classify(err)).toBe('connection');
      expect(proxy.stats().connectionsRefused).toBe(1);
      await expect(held.query('SELECT 1 AS n')).resolves.toMatchObject({ rows: [{ n: 1 }] });
      held.release();

      proxy.heal();
      await expect(fresh.query('SELECT 2 AS n')).resolves.toMatchObject({ rows: [{ n: 2 }] });
    });

    it('refuse() wins over blackhole() for new connections', async () => {
      const proxy = await startProxy();
      proxy.blackhole().refuse();
      expect(proxy.stats().faults).toEqual(['refuse', 'blackhole']);
      const err = await within(5_000, 'a refused connect', poolVia(proxy).connect()).catch(
        (e: unknown) => e,
      );
      expect(classify(err)).toBe('connection');
    });

    it('limitBandwidth() still delivers a 200 kB result, and composes with latency', async () => {
      const proxy = await startProxy();
      const pool = poolVia(proxy, { max: 1 });
      await pool.query('SELECT 1');
      const before = proxy.stats().bytesFromTarget;
      proxy.limitBandwidth(400_000).latency(20);
      expect(proxy.stats().faults).toEqual(['latency 20ms', 'bandwidth 400000B/s']);
      let length = 0;
      const took = await elapsed(async () => {
        const { rows } = await pool.query<{ s: string }>("SELECT repeat('x', 200000) AS s");
        length = rows[0]!.s.length;
      });
      expect(length).toBe(200_000);
      expect(proxy.stats().bytesFromTarget - before).toBeGreaterThanOrEqual(200_000);
      // 200 kB at 400 kB/s: about half a second; a lower bound that no machine can beat.
      expect(took).toBeGreaterThanOrEqual(300);
    });

    it('retarget() sends new connections elsewhere; open ones keep their server', async () => {
      const front = await startProxy();
      const other = await startProxy(); // a second path to the same primary, to see where we land
      const pool = poolVia(front);
      const held = await pool.connect();
      expect(() => front.retarget('192.168.0.10:5432')).toThrow(TypeError);
      front.retarget(other.address);
      expect(front.target).toEqual({ host: other.host, port: other.port });
      await expect(held.query('SELECT 1 AS n')).resolves.toMatchObject({ rows: [{ n: 1 }] });
      expect(other.stats().connectionsAccepted).toBe(0);
      const fresh = await pool.connect();
      await expect(fresh.query('SELECT 2 AS n')).resolves.toMatchObject({ rows: [{ n: 2 }] });
      expect(other.stats().connectionsAccepted).toBe(1);
      held.release();
      fresh.release();
    });

    it('close() ends every connection and stops listening', async () => {
      const proxy = await startProxy();
      const pool = poolVia(proxy);
      const client = await pool.connect();
      client.on('error', () => {});
      proxy.latency(50);
      await proxy.close();
      expect(proxy.stats().connectionsActive).toBe(0);
      await expect(client.query('SELECT 1')).rejects.toBeInstanceOf(Error);
      client.release(true);
      const probe = await new Promise<string>((resolve) => {
        const socket = net.connect(proxy.port, proxy.host);
        socket.on('connect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      expect(probe).toBe('ECONNREFUSED');
      // Calling it again is harmless.
      await proxy.close();
    });
  },
);

describe('ChaosProxy guarantees', () => {
  it('refuses targets and listen addresses that are not loopback, naming the host', async () => {
    await expect(ChaosProxy.start({ target: '10.1.2.3:5432' })).rejects.toThrow(
      /host "10\.1\.2\.3" is not a loopback address/,
    );
    await expect(
      ChaosProxy.start({ target: { host: 'db.example.com', port: 5432 } }),
    ).rejects.toThrow(TypeError);
    await expect(ChaosProxy.start({ target: '0.0.0.0:5432' })).rejects.toThrow(/"0\.0\.0\.0"/);
    await expect(ChaosProxy.start({ target: '[fe80::1]:5432' })).rejects.toThrow(TypeError);
    await expect(
      ChaosProxy.start({ target: '127.0.0.1:5432', listen: { host: '0.0.0.0' } }),
    ).rejects.toThrow(/"0\.0\.0\.0"/);
    await expect(ChaosProxy.start({ target: '127.0.0.1:0' })).rejects.toThrow(RangeError);
    await expect(ChaosProxy.start({ target: '::1:5432' })).rejects.toThrow(/brackets/);
    // Loopback targets are accepted (nothing is connected until a client arrives).
    for (const target of ['localhost:5432', '127.0.0.2:5432', '[::1]:5432']) {
      const ok = await ChaosProxy.start({ target });
      proxies.push(ok);
    }
    expect(proxies.map((p) => p.target)).toEqual([
      { host: 'localhost', port: 5432 },
      { host: '127.0.0.2', port: 5432 },
      { host: '::1', port: 5432 },
    ]);
  });

  it.skipIf(!primaryIsLocal)('forwards to a target named localhost', async () => {
    const proxy = await ChaosProxy.start({ target: `localhost:${handle.cluster.primary.port}` });
    proxies.push(proxy);
    const pool = poolVia(proxy);
    await expect(pool.query('SELECT 1 AS n')).resolves.toMatchObject({ rows: [{ n: 1 }] });
  });

  it('validates fault arguments', async () => {
    const proxy = await startProxy();
    expect(() => proxy.latency(-1)).toThrow(RangeError);
    expect(() => proxy.latency(10, Number.NaN)).toThrow(RangeError);
    expect(() => proxy.limitBandwidth(0)).toThrow(RangeError);
    expect(() => proxy.limitBandwidth(Number.POSITIVE_INFINITY)).not.toThrow();
    expect(proxy.stats().faults).toEqual([]);
  });

  it('leaves nothing that keeps the process alive after close()', async () => {
    // A child process that uses every fault, closes the proxy and its own server, and must then
    // exit by itself: a leftover timer or socket would keep it running until we kill it.
    const dir = await mkdtemp(path.join(tmpdir(), 'chaos-proxy-exit-'));
    const proxyModule = fileURLToPath(new URL('../../src/testing/chaos-proxy.ts', import.meta.url));
    const script = path.join(dir, 'run.mts');
    await writeFile(
      script,
      `
import net from 'node:net';
import { ChaosProxy } from ${JSON.stringify(proxyModule)};
const echo = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
await new Promise((r) => echo.listen(0, '127.0.0.1', () => r(undefined)));
const proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: echo.address().port } });
const socket = net.connect(proxy.port, '127.0.0.1');
socket.on('error', () => {});
await new Promise((r) => socket.once('connect', r));
proxy.latency(30, 10).limitBandwidth(50_000);
socket.write(Buffer.alloc(200_000));
await new Promise((r) => setTimeout(r, 100));
proxy.blackhole();
socket.write('swallowed');
await proxy.close();
echo.close();
process.stdout.write('closed ' + JSON.stringify(proxy.stats()));
`,
    );
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        out += c.toString();
      });
      const exited = await new Promise<number | string>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve('still running 10 s after close()');
        }, 10_000);
        child.on('exit', (code) => {
          clearTimeout(timer);
          resolve(code ?? -1);
        });
      });
      expect({ exited, out }).toMatchObject({ exited: 0 });
      expect(out).toContain('"connectionsActive":0');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FaultInjector on a real pg.Pool (the drill kit together)', () => {
  it('faults the hot path of a ResilientPool and leaves pg clients as they were', async () => {
    const pool = handle.cluster.primary.createPool({ max: 2, query_timeout: QUERY_TIMEOUT_MS });
    const injector = new FaultInjector(pool);
    const db = new ResilientPool({
      primary: injector,
      logger: false,
      retry: { minTimeout: 0, maxTimeout: 0 },
    });
    try {
      const refused = () =>
        Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      injector.failConnect(refused, { times: 1 });
      await expect(db.query('SELECT 1 AS n')).resolves.toMatchObject({ rows: [{ n: 1 }] });
      injector.failQuery(() => Object.assign(new Error('duplicate'), { code: '23505' }), {
        match: /^INSERT/,
      });
      await expect(db.write('INSERT INTO nowhere VALUES (1)')).rejects.toMatchObject({
        code: '23505',
      });
      injector.heal().delay('query', 30, { times: 1 });
      await expect(db.read('SELECT 2 AS n')).resolves.toMatchObject({ rows: [{ n: 2 }] });
      expect(injector.stats()).toMatchObject({
        connect: { failed: 1 },
        query: { failed: 1, delayed: 1 },
      });
      // Clients went back to the pool with pg's own query.
      const client = await pool.connect();
      expect(Object.hasOwn(client, 'query')).toBe(false);
      expect(client.query).toBe(pg.Client.prototype.query);
      client.release();
    } finally {
      await within(5_000, 'db.end()', db.end({ timeout: 2_000 }));
    }
  });
});
