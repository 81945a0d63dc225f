/**
 * OpenTelemetry metrics on a real cluster, through the real SDK: connection counts by state
 * match the wrapped pg pools' own counts; pending requests rise under a burst that saturates a
 * `max: 2` pool (our queue counted, which pg's own instrumentation misses) and fall back to 0;
 * a SIGKILLed replica shows up as breaker transitions, an ejection and retries, each labelled
 * with that replica and no other.
 */
import { describe, expect, it } from 'vitest';
import { ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { bounded, guardEachTest } from '../support/guards.js';
import { onlyValue, pointsOf, type SdkMetrics, sdkMetrics, sumOf } from '../support/otel-sdk.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 2 });
const open: Array<{ db: ResilientPool; sdk: SdkMetrics }> = [];

guardEachTest(async () => {
  for (const { db, sdk } of open.splice(0)) {
    await db.end({ timeout: 5_000 });
    await sdk.shutdown();
  }
});

function makeDb(options: Partial<ResilientPoolOptions> & Pick<ResilientPoolOptions, 'primary'>) {
  const sdk = sdkMetrics();
  const db = new ResilientPool({
    logger: false,
    health: { enabled: false },
    ...options,
    metrics: { meterProvider: sdk.meterProvider },
  });
  open.push({ db, sdk });
  return { db, sdk };
}

const POOL = 'db.client.connection.pool.name';
const STATE = 'db.client.connection.state';

describe('connection-pool metrics', () => {
  it('count connections by state exactly as the pg pools do', async () => {
    const { primary, replicas } = handle.cluster;
    const primaryPool = primary.createPool({ max: 5 });
    const replicaPool = replicas[0]!.createPool({ max: 3 });
    const { db, sdk } = makeDb({
      primary: primaryPool,
      replicas: [{ pool: replicaPool, name: 'replica-1' }],
    });
    // Four connections to the primary, three of them held; two to the replica, both idle.
    const held = await Promise.all([db.connect(), db.connect(), db.connect(), db.connect()]);
    held.pop()?.release();
    await Promise.all([db.read('SELECT pg_sleep(0.05)'), db.read('SELECT pg_sleep(0.05)')]);
    try {
      const metrics = await sdk.collect();
      const count = (pool: string, state: string) =>
        onlyValue(metrics, 'db.client.connection.count', { [POOL]: pool, [STATE]: state });
      expect(count('primary', 'used')).toBe(primaryPool.totalCount - primaryPool.idleCount);
      expect(count('primary', 'idle')).toBe(primaryPool.idleCount);
      expect(count('replica-1', 'used')).toBe(replicaPool.totalCount - replicaPool.idleCount);
      expect(count('replica-1', 'idle')).toBe(replicaPool.idleCount);
      expect([count('primary', 'used'), count('primary', 'idle')]).toEqual([3, 1]);
      expect([count('replica-1', 'used'), count('replica-1', 'idle')]).toEqual([0, 2]);
      expect(onlyValue(metrics, 'db.client.connection.max', { [POOL]: 'primary' })).toBe(5);
      expect(onlyValue(metrics, 'db.client.connection.max', { [POOL]: 'replica-1' })).toBe(3);
      // The endpoint's server, for the operation-duration series.
      const reads = pointsOf(metrics, 'db.client.operation.duration', {
        'server.port': replicas[0]!.port,
      });
      expect(reads).toHaveLength(1);
      expect(reads[0]?.attributes).toMatchObject({
        'db.system.name': 'postgresql',
        'db.operation.name': 'SELECT',
        'server.address': '127.0.0.1',
        'server.port': replicas[0]!.port,
        'db.namespace': 'postgres',
      });
      expect(reads[0]?.value).toBe(2);
    } finally {
      for (const client of held) client.release();
    }
  });

  it('counts pending requests under a saturating burst (20 calls on max: 2), then 0', async () => {
    const primaryPool = handle.cluster.primary.createPool({ max: 2 });
    const { db, sdk } = makeDb({ primary: primaryPool, queue: { acquireTimeout: 30_000 } });
    const burst = Promise.all(Array.from({ length: 20 }, () => db.write('SELECT pg_sleep(0.1)')));
    let peak = 0;
    let sawPgWaiters = false;
    const pending = async () =>
      onlyValue(await sdk.collect(), 'db.client.connection.pending_requests', {
        [POOL]: 'primary',
      });
    await until('the burst to drain', async () => {
      const now = await pending();
      peak = Math.max(peak, now);
      sawPgWaiters ||= primaryPool.waitingCount > 0;
      return now === 0 && peak > 0;
    });
    await bounded(burst, 30_000, 'the burst');
    // More than the pool holds were waiting: ResilientPool's own queue is counted.
    expect(peak).toBeGreaterThan(2);
    expect(peak).toBeLessThanOrEqual(18);
    expect(sawPgWaiters).toBe(false);
    const metrics = await sdk.collect();
    expect(onlyValue(metrics, 'db.client.connection.pending_requests', { [POOL]: 'primary' })).toBe(
      0,
    );
    expect(sumOf(metrics, 'db.client.connection.wait_time', { [POOL]: 'primary' })).toBe(20);
    expect(sumOf(metrics, 'db.client.connection.use_time', { [POOL]: 'primary' })).toBe(20);
    expect(sumOf(metrics, 'db.client.operation.duration')).toBe(20);
    expect(sumOf(metrics, 'db.client.connection.timeouts')).toBe(0);
    // Two connections were opened, and their opening timed.
    expect(sumOf(metrics, 'db.client.connection.create_time', { [POOL]: 'primary' })).toBe(2);
  });
});

describe.skipIf(!handle.canControlProcesses)(`a SIGKILLed replica (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('shows as breaker transitions, an ejection and retries, labelled with that replica', async () => {
    const { primary, replicas } = handle.cluster;
    const [victim, survivor] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const { db, sdk } = makeDb({
      primary: primary.createPool({ max: 2 }),
      replicas: [victim, survivor].map((r) => ({
        pool: r.createPool({ max: 2, connectionTimeoutMillis: 2_000 }),
        name: r.name,
      })),
      routing: { balancer: 'round-robin' },
      breaker: { consecutiveFailures: 2, resetTimeout: 60_000 },
      health: { intervalMs: 200, timeoutMs: 500 },
    });
    let calls = 0;
    const read = async () => {
      calls++;
      await db.read('SELECT 1');
    };
    for (let i = 0; i < 4; i++) await read();
    await victim.kill();
    try {
      for (let i = 0; i < 20; i++) await read();
      await until('the ejection of the killed replica', () =>
        db.stats().endpoints.some((e) => e.name === victim.name && e.ejections > 0),
      );
      const metrics = await sdk.collect();
      const of = (name: string) => ({ [POOL]: name });
      const state = 'resilient_pool.breaker.state';
      expect(
        onlyValue(metrics, 'resilient_pool.breaker.transitions', {
          ...of(victim.name),
          [state]: 'open',
        }),
      ).toBeGreaterThanOrEqual(1);
      expect(
        onlyValue(metrics, 'resilient_pool.breaker.state', { ...of(victim.name), [state]: 'open' }),
      ).toBe(1);
      expect(
        onlyValue(metrics, 'resilient_pool.ejections', of(victim.name)),
      ).toBeGreaterThanOrEqual(1);
      expect(
        onlyValue(metrics, 'resilient_pool.retries', {
          ...of(victim.name),
          'resilient_pool.retry.reason': 'connection',
        }),
      ).toBeGreaterThanOrEqual(1);
      // Nothing of it is put on the survivor or the primary.
      for (const other of [survivor.name, 'primary']) {
        expect(sumOf(metrics, 'resilient_pool.retries', of(other))).toBe(0);
        expect(sumOf(metrics, 'resilient_pool.breaker.transitions', of(other))).toBe(0);
        expect(sumOf(metrics, 'resilient_pool.ejections', of(other))).toBe(0);
      }
      // Every read succeeded, and each is one operation-duration point (where it was answered).
      expect(sumOf(metrics, 'db.client.operation.duration')).toBe(calls);
      const failed = pointsOf(metrics, 'db.client.operation.duration').filter(
        (p) => p.attributes['error.type'] !== undefined,
      );
      expect(failed).toEqual([]);
    } finally {
      await victim.start();
    }
  });
});
