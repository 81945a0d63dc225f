import { describe, expect, it, vi } from 'vitest';
import {
  AbortedError,
  CircuitOpenError,
  NoHealthyEndpointError,
  PoolClosedError,
  QueueFullError,
} from '../../src/index.js';
import { FakePool, pgError, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

const make = usePools();

describe('ResilientPool routing', () => {
  it('sends query() and write() to the primary and read() to replicas, spread', async () => {
    const primary = new FakePool('p');
    const r1 = new FakePool('r1');
    const r2 = new FakePool('r2');
    const db = make({ primary, replicas: [r1, r2], routing: { balancer: 'round-robin' } });
    await db.query('SELECT 1');
    await db.write('INSERT INTO t VALUES (1)');
    for (let i = 0; i < 4; i++) await db.read('SELECT 2');
    expect(primary.statements).toEqual(['SELECT 1', 'INSERT INTO t VALUES (1)']);
    expect(r1.statements).toEqual(['SELECT 2', 'SELECT 2']);
    expect(r2.statements).toEqual(['SELECT 2', 'SELECT 2']);
  });

  it('reads go to the primary when there are no replicas', async () => {
    const primary = new FakePool('p');
    const db = make({ primary, routing: { fallbackToPrimary: false } });
    await db.read('SELECT 1');
    expect(primary.statements).toEqual(['SELECT 1']);
  });

  it("queryRouting 'auto' sends only plain reads to replicas", async () => {
    const primary = new FakePool('p');
    const r1 = new FakePool('r1');
    const db = make({ primary, replicas: [r1], routing: { queryRouting: 'auto' } });
    await db.query('SELECT * FROM users WHERE id = $1', [1]);
    await db.query({ text: 'SELECT 2' });
    await db.query('SELECT * FROM jobs FOR UPDATE SKIP LOCKED');
    await db.query("SELECT nextval('s')");
    await db.query('WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d');
    expect(r1.statements).toEqual(['SELECT * FROM users WHERE id = $1', 'SELECT 2']);
    expect(primary.statements).toHaveLength(3);
  });

  it('supports the callback forms of query() and connect()', async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    const rows = await new Promise((resolve, reject) =>
      db.query('SELECT 1', [], (err, result) => (err ? reject(err) : resolve(result?.rows))),
    );
    expect(rows).toEqual([{ ok: 1 }]);
    await new Promise<void>((resolve, reject) =>
      db.query('SELECT 1', (err) => (err ? reject(err) : resolve())),
    );
    primary.handler = () => {
      throw pgError('42P01');
    };
    const err = await new Promise((resolve) => db.query('SELECT x', (e) => resolve(e)));
    expect(err).toMatchObject({ code: '42P01' });
    await new Promise<void>((resolve, reject) =>
      db.connect((e, client, done) => {
        if (e || !client || !done) return reject(e);
        done();
        resolve();
      }),
    );
    expect(db.stats().endpoints[0]?.inFlight).toBe(0);
  });
});

describe('ResilientPool retries', () => {
  it('moves a failed read to another replica and reports the retry', async () => {
    const primary = new FakePool('p');
    const dead = new FakePool('dead');
    dead.connectError = socketError('ECONNREFUSED');
    const alive = new FakePool('alive');
    const db = make({ primary, replicas: [dead, alive], routing: { balancer: 'round-robin' } });
    const retries: unknown[] = [];
    db.on('retry', (e) => retries.push(e));
    for (let i = 0; i < 4; i++) await expect(db.read('SELECT 1')).resolves.toBeDefined();
    expect(alive.statements).toHaveLength(4);
    expect(primary.statements).toHaveLength(0);
    expect(retries.length).toBeGreaterThan(0);
    expect(retries[0]).toMatchObject({ endpoint: 'replica-1', attempt: 2, delayMs: 0 });
  });

  it('retries a write whose connection was refused (nothing was sent)', async () => {
    const primary = new FakePool('p');
    let refusals = 2;
    // The first two connection attempts are refused, then the server is back.
    Object.defineProperty(primary, 'connectError', {
      get: () => (refusals-- > 0 ? socketError('ECONNREFUSED') : undefined),
    });
    const db = make({ primary });
    await expect(db.write('INSERT INTO t VALUES (1)')).resolves.toBeDefined();
    expect(primary.statements).toEqual(['INSERT INTO t VALUES (1)']);
    expect(db.stats().endpoints[0]?.retries).toBe(2);
  });

  it('never re-sends a write that may have reached the server', async () => {
    const primary = new FakePool('p');
    primary.handler = () => {
      throw new Error('Connection terminated unexpectedly');
    };
    const db = make({ primary });
    await expect(db.write('INSERT INTO t VALUES (1)')).rejects.toThrow('Connection terminated');
    expect(primary.statements).toHaveLength(1);
  });

  it('re-sends an idempotent write after a lost connection', async () => {
    const primary = new FakePool('p');
    let failures = 1;
    primary.handler = () => {
      if (failures-- > 0) throw new Error('Connection terminated unexpectedly');
      return { rows: [], rowCount: 1 };
    };
    const db = make({ primary });
    await expect(
      db.write('INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING', [], { idempotent: true }),
    ).resolves.toMatchObject({ rowCount: 1 });
    expect(primary.statements).toHaveLength(2);
  });

  it('re-runs on the primary a read that a replica refused as a write (25006)', async () => {
    const primary = new FakePool('p');
    const replica = new FakePool('r');
    replica.handler = () => {
      throw pgError('25006', 'cannot execute INSERT in a read-only transaction');
    };
    const db = make({ primary, replicas: [replica], routing: { queryRouting: 'auto' } });
    await db.read('SELECT f_that_writes()');
    expect(primary.statements).toEqual(['SELECT f_that_writes()']);
  });

  it('passes SQL errors through unchanged and does not retry them', async () => {
    const primary = new FakePool('p');
    const original = pgError('23505', 'duplicate key value violates unique constraint');
    primary.handler = () => {
      throw original;
    };
    const db = make({ primary });
    await expect(db.write('INSERT')).rejects.toBe(original);
    expect(primary.statements).toHaveLength(1);
    expect(db.stats().endpoints[0]).toMatchObject({ sqlErrors: 1, failures: 0, breaker: 'closed' });
  });

  it('stops retrying when the retry budget is spent', async () => {
    const primary = new FakePool('p');
    primary.connectError = socketError('ECONNREFUSED');
    const db = make({
      primary,
      retry: { retries: 5, minTimeout: 0, maxTimeout: 0, budgetPercent: 0, budgetMinRetries: 3 },
      breaker: { enabled: false },
    });
    await expect(db.write('INSERT')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(db.write('INSERT')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // 3 retries in all (the reserve), then every call fails after its single attempt.
    expect(primary.connects).toBe(5);
  });

  it('uses full-jitter backoff between attempts on the same endpoint', async () => {
    const primary = new FakePool('p');
    primary.connectError = socketError('ECONNREFUSED');
    const db = make({
      primary,
      retry: { retries: 3, minTimeout: 20, maxTimeout: 40, factor: 2 },
      breaker: { enabled: false },
    });
    const delays: number[] = [];
    db.on('retry', (e) => delays.push(e.delayMs));
    await expect(db.write('INSERT')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(delays).toHaveLength(3);
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(40, 20 * 2 ** i));
    });
  });

  it('an abort during a retry sleep ends the call at once', async () => {
    const primary = new FakePool('p');
    primary.connectError = socketError('ECONNREFUSED');
    const db = make({
      primary,
      retry: { retries: 3, minTimeout: 60_000, maxTimeout: 60_000 },
      breaker: { enabled: false },
    });
    const controller = new AbortController();
    db.on('retry', () => setImmediate(() => controller.abort()));
    await expect(db.write('INSERT', [], { signal: controller.signal })).rejects.toBeInstanceOf(
      AbortedError,
    );
  });
});

describe('ResilientPool guards', () => {
  it('opens the primary circuit and then fails writes fast without retrying', async () => {
    const primary = new FakePool('p');
    primary.connectError = socketError('ECONNREFUSED');
    const db = make({
      primary,
      breaker: { volumeThreshold: 3, errorThresholdPercentage: 50 },
      retry: { retries: 0 },
    });
    const states: string[] = [];
    db.on('breaker', (e) => states.push(e.state));
    for (let i = 0; i < 3; i++) await db.write('INSERT').catch(() => {});
    expect(states).toEqual(['open']);
    const connectsBefore = primary.connects;
    const err = await db.write('INSERT').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect((err as CircuitOpenError).endpoint).toBe('primary');
    expect(primary.connects).toBe(connectsBefore);
    expect(db.stats().endpoints[0]?.rejected['circuit-open']).toBe(1);
  });

  it('a server answering every statement with a class 53 error (out of memory) opens its circuit', async () => {
    const primary = new FakePool('p');
    primary.handler = () => {
      throw pgError('53200', 'out of memory');
    };
    const db = make({ primary, breaker: { consecutiveFailures: 5 }, retry: { retries: 0 } });
    for (let i = 0; i < 5; i++) await db.write('INSERT').catch(() => {});
    // Not an answer as well as a failure: five in a row is a streak.
    expect(db.stats().endpoints[0]).toMatchObject({ breaker: 'open', failures: 5, sqlErrors: 0 });
  });

  it('reads fall back to the primary when every replica circuit is open, or fail fast without fallback', async () => {
    for (const fallbackToPrimary of [true, false]) {
      const primary = new FakePool('p');
      const r1 = new FakePool('r1');
      r1.connectError = socketError('ECONNREFUSED');
      const db = make({
        primary,
        replicas: [r1],
        breaker: { volumeThreshold: 1 },
        retry: { retries: 0 },
        routing: { fallbackToPrimary },
      });
      await db.read('SELECT 1').catch(() => {});
      expect(db.stats().endpoints[1]?.breaker).toBe('open');
      if (fallbackToPrimary) {
        await expect(db.read('SELECT 1')).resolves.toBeDefined();
        expect(primary.statements).toEqual(['SELECT 1']);
      } else {
        await expect(db.read('SELECT 1')).rejects.toBeInstanceOf(NoHealthyEndpointError);
        expect(primary.statements).toEqual([]);
      }
    }
  });

  it('refuses at once with QueueFullError when the endpoint is saturated', async () => {
    const primary = new FakePool('p', 1);
    primary.connectHangs = true;
    const db = make({
      primary,
      queue: { maxWaiting: 0, acquireTimeout: 60_000 },
      retry: { retries: 0 },
    });
    const hung = db.write('SELECT pg_sleep(1000)');
    hung.catch(() => {});
    await expect(db.write('SELECT 1')).rejects.toBeInstanceOf(QueueFullError);
    expect(db.stats().endpoints[0]).toMatchObject({ inFlight: 1, queued: 0 });
    expect(db.stats().endpoints[0]?.rejected['queue-full']).toBe(1);
  });

  it('an aborted wait leaves the queue and rejects with AbortedError', async () => {
    const primary = new FakePool('p', 1);
    primary.connectHangs = true;
    const db = make({ primary, queue: { maxWaiting: 5, acquireTimeout: 60_000 } });
    db.write('SELECT pg_sleep(1000)').catch(() => {});
    const controller = new AbortController();
    const waiting = db.write('SELECT 1', [], { signal: controller.signal });
    await Promise.resolve();
    expect(db.waitingCount).toBe(1);
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    expect(db.waitingCount).toBe(0);
  });

  it('a listener that throws never breaks a call', async () => {
    const primary = new FakePool('p');
    primary.connectError = socketError('ECONNREFUSED');
    const db = make({ primary, breaker: { volumeThreshold: 1 }, retry: { retries: 1 } });
    db.on('retry', () => {
      throw new Error('listener bug');
    });
    db.on('breaker', () => {
      throw new Error('listener bug');
    });
    await expect(db.write('INSERT')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('turns idle-client errors into an error event only when someone listens', async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    // No listener on the ResilientPool: must not throw (would crash the process in pg).
    expect(() =>
      primary.emit('error', new Error('terminating connection due to administrator command')),
    ).not.toThrow();
    const seen: Array<Error & { endpoint?: string }> = [];
    db.on('error', (e) => seen.push(e));
    primary.emit('error', new Error('boom'));
    expect(seen).toHaveLength(1);
    expect(seen[0]?.endpoint).toBe('primary');
  });
});

describe('ResilientPool connect()', () => {
  it('pins a client to an endpoint and frees the permit on release, once', async () => {
    const primary = new FakePool('p', 2);
    const replica = new FakePool('r', 2);
    const db = make({ primary, replicas: [replica] });
    const client = await db.connect({ role: 'read' });
    await client.query('SELECT 1');
    expect(replica.statements).toEqual(['SELECT 1']);
    expect(db.stats().endpoints[1]?.inFlight).toBe(1);
    client.release();
    expect(db.stats().endpoints[1]?.inFlight).toBe(0);
    expect(() => client.release()).toThrow(/already been released/);
    expect(db.stats().endpoints[1]?.inFlight).toBe(0);
    const writer = await db.connect();
    writer.release();
    expect(replica.connects).toBe(1);
    expect(primary.connects).toBe(1);
  });

  it('destroys a held client that lost its connection', async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    const client = (await db.connect()) as unknown as import('../support/fake-pool.js').FakeClient;
    client.emit('error', new Error('Connection terminated unexpectedly'));
    client.release();
    expect(client.destroyed).toBe(true);
  });
});

describe('ResilientPool transactions', () => {
  it('wraps fn in BEGIN/COMMIT on the primary', async () => {
    const primary = new FakePool('p');
    const db = make({ primary, replicas: [new FakePool('r')] });
    const result = await db.transaction(
      async (tx) => {
        await tx.query('UPDATE a SET x = 1');
        return 42;
      },
      { isolation: 'serializable' },
    );
    expect(result).toBe(42);
    expect(primary.statements).toEqual([
      'BEGIN ISOLATION LEVEL SERIALIZABLE',
      'UPDATE a SET x = 1',
      'COMMIT',
    ]);
  });

  it('rolls back and rethrows when fn throws', async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    await expect(
      db.transaction(async (tx) => {
        await tx.query('UPDATE a SET x = 1');
        throw new Error('app bug');
      }),
    ).rejects.toThrow('app bug');
    expect(primary.statements).toEqual(['BEGIN', 'UPDATE a SET x = 1', 'ROLLBACK']);
    expect(db.stats().endpoints[0]?.inFlight).toBe(0);
  });

  it('reports an unknown outcome when the connection is lost during COMMIT', async () => {
    const primary = new FakePool('p');
    primary.handler = (text) => {
      if (text === 'COMMIT') throw new Error('Connection terminated unexpectedly');
      return { rows: [], rowCount: 0 };
    };
    const db = make({ primary });
    await expect(db.transaction(async () => 1)).rejects.toMatchObject({
      code: 'E_OUTCOME_UNKNOWN',
    });
  });
});

describe('ResilientPool end()', () => {
  it('refuses new calls, drains in-flight ones, ends owned pools', async () => {
    const primary = new FakePool('p');
    let finish: () => void = () => {};
    primary.handler = () =>
      new Promise((resolve) => {
        finish = () => resolve({ rows: [], rowCount: 0 });
      });
    const db = make({ primary });
    const inFlight = db.write('UPDATE slow');
    await new Promise((r) => setImmediate(r));
    const ending = db.end();
    await expect(db.write('SELECT 1')).rejects.toBeInstanceOf(PoolClosedError);
    expect(primary.ended).toBe(false);
    finish();
    await expect(inFlight).resolves.toBeDefined();
    await ending;
    expect(primary.ended).toBe(true);
    expect(db.ended).toBe(true);
  });

  it('ownsPools: false leaves the wrapped pools open', async () => {
    const primary = new FakePool('p');
    const db = make({ primary, ownsPools: false });
    await db.end();
    expect(primary.ended).toBe(false);
    expect(primary.listenerCount('error')).toBe(0);
  });

  it('gives up waiting after the timeout', async () => {
    const primary = new FakePool('p');
    primary.handler = () => new Promise(() => {});
    const db = make({ primary });
    db.write('UPDATE forever').catch(() => {});
    await new Promise((r) => setImmediate(r));
    await db.end({ timeout: 20 });
    expect(primary.ended).toBe(true);
  });
});

describe('ResilientPool edge cases', () => {
  it('maxWaiting 0 still routes reads to replicas that have a free permit', async () => {
    const primary = new FakePool('p');
    const replica = new FakePool('r');
    const db = make({ primary, replicas: [replica], queue: { maxWaiting: 0 } });
    await db.read('SELECT 1');
    expect(replica.statements).toEqual(['SELECT 1']);
  });

  it('rejects unknown or invalid per-call options with ConfigError', async () => {
    const db = make({ primary: new FakePool('p') });
    const bad = { idempotant: true } as unknown as { idempotent: boolean };
    await expect(db.write('INSERT', [], bad)).rejects.toMatchObject({
      code: 'E_CONFIG',
      problems: [expect.stringMatching(/write\(\): unknown option 'idempotant'/)],
    });
    await expect(
      db.read('SELECT 1', [], { idempotent: 'yes' as unknown as boolean }),
    ).rejects.toMatchObject({ code: 'E_CONFIG' });
    await expect(db.connect({ role: 'reader' as 'read' })).rejects.toMatchObject({
      code: 'E_CONFIG',
    });
    await expect(
      db.transaction(async () => 1, { isolation: 'snapshot' as 'serializable' }),
    ).rejects.toMatchObject({ code: 'E_CONFIG' });
  });

  it('an already aborted signal rejects at once, even with a free permit', async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    await expect(db.write('INSERT', [], { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
      AbortedError,
    );
    expect(primary.statements).toEqual([]);
  });

  it('a statement re-routed after 25006 is not re-sent after a lost connection', async () => {
    const primary = new FakePool('p');
    const replica = new FakePool('r');
    replica.handler = () => {
      throw pgError('25006');
    };
    primary.handler = () => {
      throw new Error('Connection terminated unexpectedly');
    };
    const db = make({ primary, replicas: [replica] });
    await expect(db.read('SELECT f_that_writes()')).rejects.toThrow('Connection terminated');
    expect(primary.statements).toHaveLength(1);
  });

  it('NoHealthyEndpointError carries the last failure as its cause', async () => {
    const primary = new FakePool('p');
    const r1 = new FakePool('r1');
    r1.connectError = socketError('ECONNREFUSED');
    const db = make({
      primary,
      replicas: [r1],
      routing: { fallbackToPrimary: false },
      breaker: { consecutiveFailures: 1 },
    });
    const err = await db.read('SELECT 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoHealthyEndpointError);
    expect((err as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('an async event listener that rejects does not become an unhandled rejection', async () => {
    const primary = new FakePool('p');
    primary.connectError = socketError('ECONNREFUSED');
    const db = make({ primary, retry: { retries: 1 }, breaker: { enabled: false } });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    db.on('retry', async () => {
      throw new Error('async listener bug');
    });
    await expect(db.write('INSERT')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await new Promise((r) => setTimeout(r, 10));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });

  it('end() lets calls already queued run, and supports the callback form', async () => {
    const primary = new FakePool('p', 1);
    let finish: () => void = () => {};
    primary.handler = (text) =>
      text === 'slow'
        ? new Promise((resolve) => {
            finish = () => resolve({ rows: [], rowCount: 0 });
          })
        : { rows: [], rowCount: 1 };
    const db = make({ primary });
    const slow = db.write('slow');
    const queued = db.write('queued');
    await new Promise((r) => setImmediate(r));
    expect(db.waitingCount).toBe(1);
    const ended = new Promise<void>((resolve, reject) =>
      db.end((err) => (err ? reject(err) : resolve())),
    );
    finish();
    await expect(slow).resolves.toBeDefined();
    await expect(queued).resolves.toMatchObject({ rowCount: 1 });
    await ended;
    expect(primary.ended).toBe(true);
  });

  it('an acquire timeout while connecting counts once, as a refusal', async () => {
    vi.useFakeTimers();
    const primary = new FakePool('p');
    primary.connectHangs = true;
    const db = make({ primary, queue: { acquireTimeout: 50 }, retry: { retries: 0 } });
    const call = db.write('SELECT 1').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    expect(await call).toMatchObject({ code: 'E_ACQUIRE_TIMEOUT', endpoint: 'primary' });
    const stats = db.stats().endpoints[0]!;
    expect(stats.rejected['acquire-timeout']).toBe(1);
    expect(stats.failures).toBe(0);
  });
});
