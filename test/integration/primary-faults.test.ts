/**
 * The primary under real faults: SIGKILL and restart, SIGSTOP, saturation, a restart with idle
 * clients in the pool, and end() with work in flight.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AcquireTimeoutError,
  CircuitOpenError,
  PoolClosedError,
  QueueFullError,
  ResilientPool,
  type ResilientPoolOptions,
} from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 0 });
const open: ResilientPool[] = [];

function makeDb(
  options: Partial<ResilientPoolOptions> = {},
  poolConfig: pg.PoolConfig = {},
): { db: ResilientPool; pool: pg.Pool } {
  const pool = handle.cluster.primary.createPool({ max: 2, ...poolConfig });
  const db = new ResilientPool({ primary: pool, logger: false, ...options });
  open.push(db);
  return { db, pool };
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 2_000 })));
});

describe('saturation and shutdown', () => {
  it('a saturated endpoint refuses the next call at once with QueueFullError', async () => {
    const { db } = makeDb({ queue: { maxWaiting: 2, acquireTimeout: 10_000 } });
    const busy = [1, 2, 3, 4].map(() => db.write('SELECT pg_sleep(0.5)'));
    await until('two calls in flight and two queued', () => {
      const s = db.stats().endpoints[0]!;
      return s.inFlight === 2 && s.queued === 2;
    });
    const refused = await db.write('SELECT 1').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QueueFullError);
    expect((refused as QueueFullError).endpoint).toBe('primary');
    // Refused while the queue was still full: nothing had drained in the meantime.
    expect(db.stats().endpoints[0]).toMatchObject({ inFlight: 2, queued: 2 });
    await Promise.all(busy);
    expect(db.stats().endpoints[0]?.rejected['queue-full']).toBe(1);
  });

  it('end() lets in-flight queries finish, then refuses new ones and ends the pool', async () => {
    const { db, pool } = makeDb();
    const slow = db.write("SELECT pg_sleep(0.3), 'done' AS v");
    await until('the query to be in flight', () => db.stats().endpoints[0]!.inFlight === 1);
    const ending = db.end({ timeout: 10_000 });
    await expect(db.read('SELECT 1')).rejects.toBeInstanceOf(PoolClosedError);
    await expect(slow).resolves.toMatchObject({ rows: [{ v: 'done' }] });
    await ending;
    expect(pool.ended).toBe(true);
  });
});

describe.skipIf(!handle.canControlProcesses)(`primary faults (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('SIGSTOP: calls end with AcquireTimeoutError within the timeout instead of hanging', async () => {
    const primary = handle.cluster.primary;
    const { db } = makeDb({
      queue: { acquireTimeout: 300, maxWaiting: 50 },
      retry: { retries: 0 },
      breaker: { consecutiveFailures: 0, volumeThreshold: 1_000 },
    });
    await Promise.all([db.write('SELECT 1'), db.write('SELECT 1')]); // two idle clients
    primary.pause();
    try {
      // Two calls take the two clients and hang inside the server; the rest wait in the queue.
      const calls = Array.from({ length: 6 }, () => db.write('SELECT 1').catch((e: unknown) => e));
      const settled = await Promise.race([
        Promise.all(calls.slice(2)),
        new Promise((resolve) => setTimeout(() => resolve('hung'), 10_000)),
      ]);
      expect(settled).not.toBe('hung');
      for (const outcome of settled as unknown[]) {
        expect(outcome).toBeInstanceOf(AcquireTimeoutError);
        expect((outcome as AcquireTimeoutError).endpoint).toBe('primary');
      }
      primary.resume();
      // The two that were inside the paused server complete once it runs again.
      for (const outcome of await Promise.all(calls.slice(0, 2))) {
        expect(outcome).toMatchObject({ rowCount: 1 });
      }
    } finally {
      primary.resume();
    }
  });

  it('SIGSTOP with no idle client: connecting is bounded by the acquire timeout too', async () => {
    const primary = handle.cluster.primary;
    const { db } = makeDb({ queue: { acquireTimeout: 300 }, retry: { retries: 0 } });
    primary.pause();
    try {
      await expect(db.write('SELECT 1')).rejects.toBeInstanceOf(AcquireTimeoutError);
    } finally {
      primary.resume();
    }
    await expect(db.write('SELECT 1')).resolves.toMatchObject({ rowCount: 1 });
  });

  it('SIGKILL: writes fail fast with CircuitOpenError once the breaker opens, and recover after restart', async () => {
    const primary = handle.cluster.primary;
    const { db, pool } = makeDb({
      breaker: { consecutiveFailures: 3, resetTimeout: 500 },
      retry: { retries: 1, minTimeout: 5, maxTimeout: 10 },
    });
    const states: string[] = [];
    db.on('breaker', (e) => states.push(e.state));
    await db.write('CREATE TABLE IF NOT EXISTS kill_t (id serial primary key)');
    await primary.kill();
    try {
      const errors: unknown[] = [];
      for (let i = 0; i < 10; i++)
        errors.push(await db.write('INSERT INTO kill_t DEFAULT VALUES').catch((e) => e));
      expect(states).toContain('open');
      const firstOpen = errors.findIndex((e) => e instanceof CircuitOpenError);
      expect(firstOpen).toBeGreaterThan(0);
      expect(errors.slice(firstOpen).every((e) => e instanceof CircuitOpenError)).toBe(true);
      // While open, nothing reaches the network: the pool makes no connection attempt.
      const before = pool.totalCount;
      await expect(db.write('SELECT 1')).rejects.toBeInstanceOf(CircuitOpenError);
      expect(pool.totalCount).toBe(before);
    } finally {
      await primary.start();
    }
    // After resetTimeout a probe goes through and closes the circuit.
    await until('writes to succeed again', () =>
      db.write('INSERT INTO kill_t DEFAULT VALUES').then(
        () => true,
        () => false,
      ),
    );
    expect(states.slice(-2)).toEqual(['half-open', 'closed']);
  });

  it('a restart with idle clients in the pool does not crash the process', async () => {
    const primary = handle.cluster.primary;
    // A bare pg.Pool with no 'error' listener of its own: the ResilientPool must provide one.
    const url = new URL(primary.url);
    const pool = new pg.Pool({
      host: url.hostname,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: url.pathname.slice(1),
      max: 3,
    });
    const db = new ResilientPool({ primary: pool, logger: false });
    open.push(db);
    const idleErrors: Array<Error & { endpoint?: string }> = [];
    db.on('error', (e) => idleErrors.push(e));
    await Promise.all([1, 2, 3].map(() => db.write('SELECT pg_sleep(0.05)')));
    expect(pool.idleCount).toBe(3);
    await primary.stop();
    await primary.start();
    await until('the idle clients to report their loss', () => idleErrors.length === 3);
    expect(idleErrors.every((e) => e.endpoint === 'primary')).toBe(true);
    await expect(db.write('SELECT 1 AS ok')).resolves.toMatchObject({ rows: [{ ok: 1 }] });
  });
});
