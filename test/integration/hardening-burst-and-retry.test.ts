/**
 * Hardening (issue 9), on the real cluster:
 *
 * - A burst on a healthy database must not open the circuit: waiting in our own queue, or for a
 *   client another caller holds, is local saturation (DESIGN.md). Some calls may fail with
 *   E_ACQUIRE_TIMEOUT; afterwards the breaker is closed and the next call succeeds.
 * - `end()` leaves no sleep behind: a call sleeping between retries settles with E_POOL_CLOSED
 *   by the time `end()` resolves, and no timer of the pool keeps the process alive.
 * - Bad arguments are refused before anything is sent: `transaction('nope')` rejects with
 *   ConfigError and checks nothing out; duplicate endpoint names throw ConfigError.
 */
import net from 'node:net';
import pg from 'pg';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  ConfigError,
  ResilientPool,
  type ResilientPoolEvents,
  type ResilientPoolOptions,
} from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { bounded, codeOf, guardEachTest, settle } from '../support/guards.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 0 });

// ---- guards shared by every test of the file -------------------------------------------------

const open: ResilientPool[] = [];
const barePools: pg.Pool[] = [];

guardEachTest(() => {
  vi.restoreAllMocks();
  return Promise.all([
    ...open.splice(0).map((db) => db.end({ timeout: 2_000 })),
    ...barePools.splice(0).map((p) => p.end().catch(() => {})),
  ]);
});

function track(options: ResilientPoolOptions): ResilientPool {
  const db = new ResilientPool({ logger: false, ...options });
  open.push(db);
  return db;
}

// ---- a burst on a healthy database -----------------------------------------------------------

describe('a burst on a healthy database never opens the circuit', () => {
  const cases: Array<{ name: string; options: Partial<ResilientPoolOptions> }> = [
    { name: 'default options', options: {} },
    { name: 'queue.acquireTimeout 200', options: { queue: { acquireTimeout: 200 } } },
  ];
  for (const c of cases) {
    it(`twenty concurrent writes on a pg.Pool of two, ${c.name}`, async () => {
      const pool = handle.cluster.primary.createPool({ max: 2 });
      const db = track({ primary: pool, ...c.options });
      const states: ResilientPoolEvents['breaker'][] = [];
      db.on('breaker', (e) => states.push(e));
      const outcomes = await bounded(
        Promise.all(Array.from({ length: 20 }, () => settle(db.write('SELECT pg_sleep(0.3)')))),
        60_000,
        'the burst',
      );
      const codes = outcomes.map(codeOf);
      // Each call either ran or waited too long in our own queue; nothing else.
      for (const code of codes) expect(['resolved', 'E_ACQUIRE_TIMEOUT']).toContain(code);
      expect(codes).toContain('resolved');
      expect(states, 'breaker state changes during a burst on a healthy server').toEqual([]);
      expect(db.stats().endpoints[0]?.breaker).toBe('closed');
      const next = await bounded(db.write('SELECT 1 AS one'), 5_000, 'the call after the burst');
      expect(next.rows).toEqual([{ one: 1 }]);
      expect(db.stats().endpoints[0]?.breaker).toBe('closed');
    });
  }

  it('many calls sleeping between retries at once raise no listener-leak warning', async () => {
    // Each retry sleep listens on the pool's lifetime signal (end() ends it); more than ten
    // sleeping at once must not look like a leak to Node (MaxListenersExceededWarning).
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'MaxListenersExceededWarning') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const pool = handle.cluster.primary.createPool({ max: 2 });
      const db = track({ primary: pool, queue: { acquireTimeout: 200 } });
      const retries: ResilientPoolEvents['retry'][] = [];
      db.on('retry', (e) => retries.push(e));
      await bounded(
        Promise.all(Array.from({ length: 20 }, () => settle(db.write('SELECT pg_sleep(0.3)')))),
        60_000,
        'the burst',
      );
      expect(retries.length).toBeGreaterThan(10);
      // Warnings are emitted on a later tick.
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(warnings.map((w) => w.message)).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

// ---- end() during a retry backoff ------------------------------------------------------------

/** A loopback port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Records the timers the library's own code (src/) starts from now on, with where each was
 * started; `alive()` lists those still pending and ref'd, i.e. keeping the process alive. Node's
 * own count (`process.getActiveResourcesInfo()`) cannot tell ours from vitest's.
 */
function watchLibraryTimers(): { alive(): string[]; stop(): void } {
  const realSetTimeout = globalThis.setTimeout;
  const realSetInterval = globalThis.setInterval;
  const started: Array<{ timer: NodeJS.Timeout; where: string }> = [];
  const record = (timer: NodeJS.Timeout) => {
    const frames = (new Error().stack ?? '').split('\n').slice(3);
    const first = frames.find((f) => !f.includes('node:internal'));
    if (first?.includes('/src/') && !first.includes('node_modules')) {
      started.push({ timer, where: frames.slice(0, 4).join(' <- ').trim() });
    }
    return timer;
  };
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) =>
    record(realSetTimeout(...args))) as typeof setTimeout;
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) =>
    record(realSetInterval(...args))) as typeof setInterval;
  return {
    alive: () =>
      started
        .filter(({ timer }) => !(timer as { _destroyed?: boolean })._destroyed && timer.hasRef())
        .map(({ where }) => where),
    stop: () => {
      globalThis.setTimeout = realSetTimeout;
      globalThis.setInterval = realSetInterval;
    },
  };
}

describe('end() leaves nothing sleeping', () => {
  it('a call in a retry backoff settles with E_POOL_CLOSED by the time end() resolves', async () => {
    const timers = watchLibraryTimers();
    onTestFinished(() => timers.stop());
    const pool = new pg.Pool({
      host: '127.0.0.1',
      port: await closedPort(),
      user: 'postgres',
      database: 'postgres',
      max: 2,
    });
    pool.on('error', () => {});
    const db = track({
      primary: pool,
      retry: { retries: 5, minTimeout: 2_000, maxTimeout: 2_000 },
      breaker: { enabled: false },
      // No probe: it would declare the endpoint down and end the retries on its own.
      health: { enabled: false },
    });
    const retries: ResilientPoolEvents['retry'][] = [];
    db.on('retry', (e) => retries.push(e));
    // Full jitter draws the sleep in [0, 2000): make it long, so end() finds the call asleep.
    vi.spyOn(Math, 'random').mockReturnValue(0.75);
    let settled = false;
    const call = settle(db.write('SELECT 1')).finally(() => {
      settled = true;
    });
    await until('the call to sleep before a retry', () => retries.length > 0, {
      timeoutMs: 5_000,
      intervalMs: 10,
    });
    vi.restoreAllMocks();
    expect(retries[0]?.delayMs).toBeGreaterThanOrEqual(1_000);
    expect(settled).toBe(false);
    await bounded(db.end({ timeout: 100 }), 5_000, 'end({ timeout: 100 })');
    // Settled by then, not when the sleep would have ended.
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled, 'the call still sleeps after end() resolved').toBe(true);
    const outcome = await bounded(call, 5_000, 'the call after end()');
    expect(codeOf(outcome)).toBe('E_POOL_CLOSED');
    expect(retries).toHaveLength(1);
    expect(pool.ended).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(timers.alive(), 'timers of the library left alive after end()').toEqual([]);
  });

  it.skipIf(!handle.canControlProcesses)(
    `a call connecting to a frozen primary settles with E_POOL_CLOSED at end(), leaving no timer (${NEEDS_LOCAL_CLUSTER})`,
    async () => {
      const primary = handle.cluster.primary;
      const timers = watchLibraryTimers();
      onTestFinished(() => timers.stop());
      const pool = primary.createPool({ max: 2 });
      const db = track({
        primary: pool,
        // Long enough that a timer of the connect would still be pending when end() is done.
        queue: { acquireTimeout: 10_000 },
        retry: { retries: 0 },
        health: { enabled: false },
      });
      primary.pause();
      let settled = false;
      try {
        const call = settle(db.write('SELECT 1')).finally(() => {
          settled = true;
        });
        await until('the call to be connecting', () => pool.totalCount === 1, {
          timeoutMs: 5_000,
          intervalMs: 10,
        });
        await bounded(db.end({ timeout: 100 }), 5_000, 'end({ timeout: 100 })');
        await new Promise((resolve) => setImmediate(resolve));
        expect(settled, 'the call still waits for its connection after end() resolved').toBe(true);
        expect(codeOf(await call)).toBe('E_POOL_CLOSED');
        await new Promise((resolve) => setImmediate(resolve));
        expect(timers.alive(), 'timers of the library left alive after end()').toEqual([]);
      } finally {
        primary.resume();
      }
    },
  );
});

// ---- bad arguments are refused before anything is sent ---------------------------------------

describe('bad arguments are refused before anything is sent', () => {
  it("transaction('nope') rejects with ConfigError and checks nothing out", async () => {
    const pool = handle.cluster.primary.createPool({ max: 2 });
    let checkouts = 0;
    const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
    (pool as { connect: unknown }).connect = (...args: unknown[]) => {
      checkouts++;
      return connect(...args);
    };
    const db = track({ primary: pool, health: { enabled: false } });
    const calls = [
      () => db.transaction('nope' as never),
      () => db.transaction(async () => 1, { isolation: 'nope' as never }),
      () => db.transaction(async () => 1, { nope: true } as never),
    ];
    for (const call of calls) {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = call();
      }, 'refused with a rejection, not a throw').not.toThrow();
      const outcome = await bounded(settle(promise!), 2_000, 'the refused transaction()');
      expect(outcome.ok).toBe(false);
      expect((outcome as { error: unknown }).error).toBeInstanceOf(ConfigError);
      expect(codeOf(outcome)).toBe('E_CONFIG');
    }
    expect(checkouts, 'clients checked out for refused transactions').toBe(0);
    expect(db.stats().endpoints[0]?.calls).toBe(0);
    expect(pool.totalCount).toBe(0);
    // The pool is untouched and works.
    const result = await bounded(
      db.transaction((tx) => tx.query('SELECT 1 AS one')),
      5_000,
      'a valid transaction',
    );
    expect(result.rows).toEqual([{ one: 1 }]);
    expect(checkouts).toBe(1);
  });

  it('duplicate endpoint names throw ConfigError', () => {
    const pools = () => {
      const made = [0, 1, 2].map(() => {
        // Never connected: pg.Pool opens connections only when asked.
        const pool = new pg.Pool({ connectionString: handle.cluster.primary.url });
        barePools.push(pool);
        return pool;
      });
      return made as [pg.Pool, pg.Pool, pg.Pool];
    };
    const construct = (options: ResilientPoolOptions): unknown => {
      try {
        open.push(new ResilientPool({ logger: false, ...options }));
        return 'constructed';
      } catch (err) {
        return err;
      }
    };
    const cases: Array<[string, (p: [pg.Pool, pg.Pool, pg.Pool]) => ResilientPoolOptions]> = [
      [
        'two primary candidates named x',
        ([a, b]) => ({
          primary: [
            { pool: a, name: 'x' },
            { pool: b, name: 'x' },
          ],
        }),
      ],
      [
        "a replica named 'primary-1' next to generated candidate names",
        ([a, b, c]) => ({ primary: [a, b], replicas: [{ pool: c, name: 'primary-1' }] }),
      ],
      [
        "a replica named 'primary'",
        ([a, , c]) => ({ primary: a, replicas: [{ pool: c, name: 'primary' }] }),
      ],
      [
        'two replicas with the same name',
        ([a, b, c]) => ({
          primary: a,
          replicas: [
            { pool: b, name: 'r' },
            { pool: c, name: 'r' },
          ],
        }),
      ],
    ];
    for (const [name, options] of cases) {
      const outcome = construct(options(pools()));
      expect(outcome, name).toBeInstanceOf(ConfigError);
      expect((outcome as ConfigError).code, name).toBe('E_CONFIG');
    }
  });
});
