/**
 * Primary discovery after a real failover: with every node listed as a primary candidate, the
 * primary is SIGKILLed under a write load, a replica is promoted, and writes resume on it without
 * the application changing anything; no acknowledged write is lost or doubled.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { until } from '../support/wait.js';

// replica-1 confirms every commit, so promoting it loses no acknowledged write.
const handle = useCluster({
  replicas: 2,
  postgresConf: { synchronous_standby_names: 'FIRST 1 ("replica-1")' },
});
let db: ResilientPool | undefined;

afterAll(async () => {
  await db?.end({ timeout: 5_000 });
});

describe.skipIf(!handle.canControlProcesses)(`primary discovery (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('finds the promoted replica and resumes writes; every acknowledged write is there once', async () => {
    const cluster = handle.cluster;
    const [r1, r2] = cluster.replicas;
    const settings = { max: 4, connectionTimeoutMillis: 1_000, query_timeout: 3_000 };
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
      logger: false,
    });
    const pool = db;
    const failovers: Array<{ from: string; to: string }> = [];
    pool.on('failover', (e) => failovers.push(e));
    await pool.write('CREATE TABLE IF NOT EXISTS discovery_ledger (op int NOT NULL)');

    const acked: number[] = [];
    let failed = 0;
    let killedAt = -1;
    for (let op = 0; op < 400; op++) {
      if (op === 100) {
        await cluster.primary.kill();
        killedAt = op;
        const promoted = await cluster.promote(0);
        // The new primary would wait for a synchronous standby named after itself: drop it.
        const admin = promoted.createPool({ max: 1 });
        await admin.query("ALTER SYSTEM SET synchronous_standby_names = ''");
        await admin.query('SELECT pg_reload_conf()');
        await admin.end();
      }
      try {
        await pool.write('INSERT INTO discovery_ledger VALUES ($1)', [op]);
        acked.push(op);
      } catch {
        failed++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(killedAt).toBe(100);
    expect(failovers).toEqual([{ from: 'node-0', to: 'node-1' }]);
    // Writes resumed on the new primary without any change to the application.
    expect(acked.filter((op) => op > 100).length).toBeGreaterThan(200);
    console.log(
      `primary discovery: ${failed} writes failed during the failover, ${acked.length} acknowledged`,
    );

    await until(
      'reads and writes to settle',
      async () => (await pool.write('SELECT 1')).rowCount === 1,
    );
    const { rows } = await pool.write<{ op: number; n: number }>(
      'SELECT op, count(*)::int AS n FROM discovery_ledger GROUP BY op',
    );
    const counts = new Map(rows.map((r) => [r.op, r.n]));
    expect(acked.filter((op) => counts.get(op) !== 1)).toEqual([]);
    expect(rows.filter((r) => r.n > 1)).toEqual([]);
  }, 120_000);
});
