/**
 * A real failover, seen through the metrics: with every node listed as a primary candidate, the
 * primary is SIGKILLed, a replica promoted, and writes resume on it; `resilient_pool.failovers`
 * counts it once, as the 'failover' event and stats() do, and the diagnostics channel
 * `resilient-pool:failover` publishes it.
 */
import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { guardEachTest } from '../support/guards.js';
import { onlyValue, type SdkMetrics, sdkMetrics } from '../support/otel-sdk.js';
import { until } from '../support/wait.js';

// replica-1 confirms every commit, so promoting it loses no acknowledged write.
const handle = useCluster({
  replicas: 2,
  postgresConf: { synchronous_standby_names: 'FIRST 1 ("replica-1")' },
});
let db: ResilientPool | undefined;
let sdk: SdkMetrics | undefined;
const published: unknown[] = [];
const onFailover = (message: unknown) => published.push(message);

guardEachTest(async () => {
  diagnostics.unsubscribe('resilient-pool:failover', onFailover);
  await db?.end({ timeout: 5_000 });
  await sdk?.shutdown();
});

describe.skipIf(!handle.canControlProcesses)(`a failover (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('is counted once by resilient_pool.failovers and published on its channel', async () => {
    const cluster = handle.cluster;
    const [r1, r2] = cluster.replicas;
    const settings = { max: 4, connectionTimeoutMillis: 1_000, query_timeout: 3_000 };
    sdk = sdkMetrics();
    diagnostics.subscribe('resilient-pool:failover', onFailover);
    db = new ResilientPool({
      primary: [
        { pool: cluster.primary.createPool(settings), name: 'node-0' },
        { pool: r1!.createPool(settings), name: 'node-1' },
        { pool: r2!.createPool(settings), name: 'node-2' },
      ],
      replicas: [r1!.createPool(settings), r2!.createPool(settings)],
      breaker: { consecutiveFailures: 2, resetTimeout: 500 },
      retry: { retries: 1, minTimeout: 10, maxTimeout: 50 },
      health: { intervalMs: 200, timeoutMs: 500 },
      metrics: { meterProvider: sdk.meterProvider },
      logger: false,
    });
    const pool = db;
    const failovers: unknown[] = [];
    pool.on('failover', (e) => failovers.push(e));
    await pool.write('CREATE TABLE IF NOT EXISTS observed_failover (op int NOT NULL)');
    const before = await sdk.collect();
    expect(onlyValue(before, 'resilient_pool.failovers', {})).toBe(0);

    await cluster.primary.kill();
    const promoted = await cluster.promote(0);
    // The new primary would wait for a synchronous standby named after itself: drop it.
    const admin = promoted.createPool({ max: 1 });
    await admin.query("ALTER SYSTEM SET synchronous_standby_names = ''");
    await admin.query('SELECT pg_reload_conf()');
    await admin.end();

    let acked = 0;
    for (let op = 0; op < 300 && acked < 20; op++) {
      try {
        await pool.write('INSERT INTO observed_failover VALUES ($1)', [op]);
        acked++;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    expect(acked).toBe(20);
    await until('the failover event', () => failovers.length > 0);
    const after = await sdk.collect();
    expect(onlyValue(after, 'resilient_pool.failovers', {})).toBe(1);
    expect(pool.stats().failovers).toBe(1);
    expect(failovers).toEqual([{ from: 'node-0', to: 'node-1' }]);
    expect(published).toEqual([{ from: 'node-0', to: 'node-1' }]);
  }, 120_000);
});
