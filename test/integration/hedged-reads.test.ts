/**
 * Hedged reads (issue 12) on the real cluster: a primary and two streaming replicas, one of them
 * frozen (SIGSTOP: connections accept but nothing answers) under a steady read load of eight
 * callers, with the pool's default health probes (a frozen replica is declared down within about
 * two seconds).
 *
 * The same load runs twice, each on fresh pools: without hedging, and with `hedge: true` (the
 * defaults: adaptive delay from the replica's p95, 5% budget). With hedging on, no read fails.
 * Each run prints its latency percentiles before and during the freeze and the hedge counters
 * (printed, not asserted: timings on a shared 2-core machine are noise).
 *
 * After SIGCONT, the frozen replica's cancelled statements have left nothing behind: its pg.Pool
 * has no client checked out and nobody waiting, the pool's endpoint nothing in flight or queued,
 * and the server no backend of ours beyond the pool's clients (and the health probe's own).
 *
 * And on a replica that is slow rather than frozen, the losing statement is cancelled on its
 * server: it is gone from pg_stat_activity long before it would have finished.
 *
 * The node is always resumed, by the test and by the guard after it. Every await is bounded.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { HedgeOption, PoolStats } from '../../src/index.js';
import { ResilientPool } from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { bounded, guardEachTest } from '../support/guards.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 2 });

const open: ResilientPool[] = [];
guardEachTest(() => {
  for (const node of handle.cluster.nodes) node.resume();
  return Promise.all(open.splice(0).map((db) => db.end({ timeout: 2_000 })));
});

const CALLERS = 8;
/** Load before the freeze: the budget's window and the latency windows see a steady service. */
const STEADY_MS = 2_000;
const FROZEN_MS = 3_000;
const POOL_MAX = 4;

interface RunResult {
  label: string;
  /** Latencies of reads started before the freeze, and during it, in ms. */
  before: number[];
  during: number[];
  errors: unknown[];
  stats: PoolStats;
}

/** The nearest-rank q-quantile of `sorted` (ascending), in ms. */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

function describeRun({ label, before, during, errors, stats }: RunResult): string {
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const sorted = [...during].sort((a, b) => a - b);
  const steady = [...before].sort((a, b) => a - b);
  const hedges = stats.hedges
    ? `hedges sent ${stats.hedges.sent}, won ${stats.hedges.won}, losers cancelled ${stats.hedges.cancelled}, budget refused ${stats.hedges.budgetRefused}, no target ${stats.hedges.noTarget}`
    : 'hedging off';
  return (
    `${label.padEnd(26)} before: p50 ${ms(quantile(steady, 0.5))}, p99 ${ms(quantile(steady, 0.99))}; ` +
    `during: ${sorted.length} reads, ${errors.length} failed, p50 ${ms(quantile(sorted, 0.5))}, ` +
    `p99 ${ms(quantile(sorted, 0.99))}, p99.9 ${ms(quantile(sorted, 0.999))}, ` +
    `max ${ms(sorted.at(-1) ?? Number.NaN)}; ${hedges}`
  );
}

/** Backends named `applicationName` on the server `admin` connects to (under another name). */
async function backendsOf(admin: pg.Pool, applicationName: string): Promise<number> {
  const { rows } = await bounded(
    admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    ),
    5_000,
    'counting backends',
  );
  return rows[0]!.n;
}

async function runAgainstFrozenReplica(label: string, hedge: HedgeOption): Promise<RunResult> {
  const { primary, replicas } = handle.cluster;
  const frozen = replicas[1]!;
  const applicationName = `hedged-reads-${label.replaceAll(/\W+/g, '-')}`;
  const frozenPool = frozen.createPool({ max: POOL_MAX, application_name: applicationName });
  const db = new ResilientPool({
    primary: primary.createPool({ max: POOL_MAX, application_name: applicationName }),
    replicas: [
      replicas[0]!.createPool({ max: POOL_MAX, application_name: applicationName }),
      frozenPool,
    ],
    logger: false,
    hedge,
  });
  open.push(db);
  await until(
    'both replicas to be probed healthy',
    () => db.stats().endpoints.every((e) => e.health === 'healthy'),
    { timeoutMs: 15_000 },
  );
  // Eight callers read all along: first a steady service, then with replica-2 frozen.
  const before: number[] = [];
  const during: number[] = [];
  const errors: unknown[] = [];
  let frozenAt = Number.POSITIVE_INFINITY;
  let stopAt = Number.POSITIVE_INFINITY;
  const caller = async () => {
    for (let started = performance.now(); started < stopAt; started = performance.now()) {
      try {
        await db.read('SELECT 1');
        (started < frozenAt ? before : during).push(performance.now() - started);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  const callers = Promise.all(Array.from({ length: CALLERS }, caller));
  try {
    await new Promise((resolve) => setTimeout(resolve, STEADY_MS));
    frozen.pause();
    frozenAt = performance.now();
    stopAt = frozenAt + FROZEN_MS;
    await bounded(callers, FROZEN_MS + 20_000, `the reads of "${label}"`);
  } finally {
    stopAt = 0;
    frozen.resume();
  }
  const stats = db.stats();

  // After SIGCONT: the replica is probed up again, and the cancelled statements left nothing.
  await until('replica-2 to be up again', () => db.stats().endpoints[2]?.down === false, {
    timeoutMs: 20_000,
  });
  const admin = frozen.createPool({ max: 1, application_name: 'hedged-reads-admin' });
  try {
    // An abandoned connection is destroyed once its cancel request got through (at most 1 s).
    await until(
      'the frozen replica to hold no client checked out',
      () => frozenPool.totalCount === frozenPool.idleCount && frozenPool.waitingCount === 0,
      { timeoutMs: 10_000 },
    );
    const replicaStats = db.stats().endpoints[2]!;
    expect(replicaStats.inFlight).toBe(0);
    expect(replicaStats.queued).toBe(0);
    // A destroyed connection's backend ends once it runs again and finds its socket closed.
    await until(
      "the frozen replica's server to keep no backend of ours beyond the pool's clients",
      async () =>
        (await backendsOf(admin, applicationName)) <= frozenPool.totalCount + 1 /* the probe */,
      { timeoutMs: 15_000, intervalMs: 100 },
    );
  } finally {
    await admin.end().catch(() => {});
  }
  return { label, before, during, errors, stats };
}

describe.skipIf(!handle.canControlProcesses)(
  `hedged reads against a frozen replica (${NEEDS_LOCAL_CLUSTER})`,
  () => {
    it('no read fails with hedging on; p99 printed with and without; no client leaked', async () => {
      const runs = [
        await runAgainstFrozenReplica('without hedging', false),
        await runAgainstFrozenReplica('hedge: true (defaults)', true),
      ];
      console.log(
        [
          `hedged reads, ${CALLERS} callers, replica-2 SIGSTOPped for ${FROZEN_MS} ms after ${STEADY_MS} ms of steady load:`,
          ...runs.map(describeRun),
        ].join('\n'),
      );
      for (const run of runs.slice(1)) {
        expect(run.errors.map(String), run.label).toEqual([]);
        expect(run.during.length, run.label).toBeGreaterThan(0);
        // The frozen replica took reads, and hedges went out for them.
        expect(run.stats.hedges?.sent, run.label).toBeGreaterThan(0);
      }
    }, 120_000);

    it('the loser on a slow replica is cancelled on its server, long before it would finish', async () => {
      const { primary, replicas } = handle.cluster;
      const slow = replicas[1]!;
      const db = new ResilientPool({
        primary: primary.createPool({ max: POOL_MAX }),
        replicas: replicas.map((r) => r.createPool({ max: POOL_MAX })),
        logger: false,
        routing: { balancer: 'round-robin' },
        // Long enough that the fast read is rarely hedged too on a busy machine (when it is, its
        // hedge goes to replica-2, loses, and is cancelled as well: counted, not asserted).
        hedge: { delay: 200 },
      });
      open.push(db);
      const marker = 'hedged_reads_slow_loser';
      // Ten seconds on replica-2, at once elsewhere: the statement itself says where it is slow.
      const sql = `SELECT pg_sleep(CASE WHEN current_setting('port')::int = ${slow.port} THEN 10 ELSE 0 END) /* ${marker} */`;
      const started = performance.now();
      // Round-robin: of two reads in a row, one goes to replica-2 first.
      await bounded(Promise.all([db.read(sql), db.read(sql)]), 5_000, 'two hedged reads');
      const tookMs = performance.now() - started;
      // The read that went to replica-2 first was answered by its hedge.
      expect(db.stats().hedges?.won).toBeGreaterThanOrEqual(1);
      const admin = slow.createPool({ max: 1, application_name: 'hedged-reads-admin' });
      try {
        await until(
          'the losing statement to be gone from replica-2',
          async () => {
            const { rows } = await bounded(
              admin.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM pg_stat_activity
                  WHERE pid <> pg_backend_pid() AND strpos(query, $1) > 0 AND state = 'active'`,
                [marker],
              ),
              5_000,
              'looking at replica-2',
            );
            return rows[0]!.n === 0;
          },
          { timeoutMs: 5_000, intervalMs: 50 },
        );
      } finally {
        await admin.end().catch(() => {});
      }
      console.log(
        `a read slow on replica-2 answered by its hedge in ${tookMs.toFixed(0)} ms (10 s unhedged); the loser cancelled on replica-2 after ${(performance.now() - started).toFixed(0)} ms`,
      );
      expect(db.stats().hedges?.cancelled).toBeGreaterThanOrEqual(1);
    });
  },
);
