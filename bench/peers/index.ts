/**
 * Case 6, peers: reads spread over the same two replicas by ResilientPool and by what a user
 * would pick instead, in the same run, at concurrency 32, 16 server connections per replica on
 * every side except pgpool-II's (its 32 children each hold a connection to every backend, so 32
 * per replica, of which at most 32 in all are busy at a time):
 *
 *   pgpool-II        one pg.Pool (max 32) -> pgpool, load balancing per statement over the two
 *                    replicas (primary weight 0)            vs db.read(SELECT 1)
 *   PgBouncer        one PgBouncer per replica (transaction mode, pool 16), the application
 *                    alternating between two pg.Pools (max 16 each)   vs db.read(SELECT 1)
 *   drizzle          withReplicas(drizzle(primary), [drizzle(r1), drizzle(r2)]) over plain
 *                    pg.Pools, db.select(...)    vs the same select through drizzle({ client: db })
 *                    with routing.queryRouting 'auto': the ORM on both sides, only the routing
 *                    layer differs
 *   drizzle vs read  the same withReplicas select      vs db.read of the same SQL text: what
 *                    dropping the ORM for db.read gains (the ORM's cost is on the peer side only)
 *
 * ResilientPool is one instance for all rows: primary pool max 1 (reads never go there), two
 * replica pools max 16, default options otherwise. Every proxy is started before its row and
 * stopped after it (peer-process.ts); a missing binary skips its row with how to install it.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { BenchPlan } from '../config.js';
import type { BenchNode, BenchServer, BenchTopology } from '../server.js';
import { guard } from '../server.js';
import { fmtInt, fmtMs, fmtRatio, round } from '../stats.js';
import { ResilientPool } from '../subject.js';
import { note, printTable } from '../table.js';
import { within } from '../watchdog.js';
import { findBinary, PGBOUNCER, PGPOOL } from './binaries.js';
import { type PeerPairedResult, peerPairedRounds } from './paired.js';
import { type PeerProcess, runAs } from './peer-process.js';
import { startPgbouncer } from './pgbouncer.js';
import { startPgpool } from './pgpool.js';

export const PEER_CONCURRENCY = 32;
const SQL = 'SELECT 1';
/** Server connections per replica on every side. */
const PER_REPLICA = PEER_CONCURRENCY / 2;
/** How to read every row's ratio. */
export const PEER_READ_AS = 'ResilientPool / peer ops/s; higher is better for us';

export interface PeerRow {
  peer: string;
  /** What each side runs, one line. */
  setup: string;
  result?: PeerPairedResult;
  /** Why the row did not run (with how to install what is missing). */
  skipped?: string;
  /** Where the reads went, per side. */
  notes: string[];
}

export interface PeerBenchResult {
  rows: PeerRow[];
  /** Set when no row could run (no replicas). */
  problem?: string;
}

export async function peerBench(server: BenchServer, plan: BenchPlan): Promise<PeerBenchResult> {
  const topology = server.topology;
  if ('problem' in topology) return { rows: [], problem: topology.problem };
  if (topology.replicas.length < 2) {
    return {
      rows: [],
      problem: `the peer rows need two replicas, found ${topology.replicas.length}`,
    };
  }
  const user = await runAs();
  const [pgpoolBin, pgbouncerBin] = await Promise.all([findBinary(PGPOOL), findBinary(PGBOUNCER)]);
  const [r1, r2] = topology.replicas as [BenchNode, BenchNode];
  const oursReplicas = [r1.createPool({ max: PER_REPLICA }), r2.createPool({ max: PER_REPLICA })];
  await Promise.all(oursReplicas.map((p) => openAll(p, PER_REPLICA)));
  const ours = new ResilientPool({
    primary: topology.primary.createPool({ max: 1 }),
    replicas: oursReplicas,
    // 'auto' only changes db.query(), which the drizzle row's drizzle({ client: db }) uses.
    routing: { queryRouting: 'auto' },
    logger: false,
  });
  const oursRead = () => ours.read(SQL);
  const calls = () => ours.stats().endpoints.map((e) => ({ name: e.name, calls: e.calls }));
  /** Calls per endpoint of ours since `before`. */
  const spread = (before: ReturnType<typeof calls>): string =>
    calls()
      .map((e, i) => `${e.name}=${e.calls - (before[i]?.calls ?? 0)}`)
      .join(' ');
  const rows: PeerRow[] = [];
  /** A client pool of the peer side on a proxy's port, logging in as `node`'s user. */
  const clientPool = (port: number, node: BenchNode, max: number) =>
    guard(
      new pg.Pool({
        host: '127.0.0.1',
        port,
        user: node.user,
        password: node.password,
        database: node.database,
        max,
      }),
      server.stray,
    );

  try {
    // ---- pgpool-II -----------------------------------------------------------------------
    {
      const row: PeerRow = {
        peer: pgpoolBin.found
          ? pgpoolBin.version.replace(/ version /, ' ').replace(/ \(.*\)$/, '')
          : 'pgpool-II',
        setup:
          `pg.Pool (max ${PEER_CONCURRENCY}) -> pgpool-II (${PEER_CONCURRENCY} children, statement-level load balancing, weights primary 0 / replicas 1:1)` +
          ` vs db.read('${SQL}')`,
        notes: [],
      };
      rows.push(row);
      if (!pgpoolBin.found) row.skipped = pgpoolBin.why;
      else {
        let started: Awaited<ReturnType<typeof startPgpool>> | undefined;
        let pool: pg.Pool | undefined;
        try {
          started = await startPgpool({
            binary: pgpoolBin.path,
            topology,
            user,
            children: PEER_CONCURRENCY,
          });
          const p = clientPool(started.port, topology.primary, PEER_CONCURRENCY);
          pool = p;
          await openAll(p, PEER_CONCURRENCY);
          const before = calls();
          const countsBefore = await started.selectCounts(p);
          row.result = await peerPairedRounds(PEER_CONCURRENCY, () => p.query(SQL), oursRead, plan);
          row.notes.push(
            `pgpool SELECTs per backend (before -> after): ${countsBefore} -> ${await started.selectCounts(p)}`,
          );
          row.notes.push(`ResilientPool calls per endpoint: ${spread(before)}`);
        } catch (err) {
          row.skipped = `FAILED: ${(err as Error).message}`;
        } finally {
          if (pool !== undefined) await endPool(pool);
          await started?.process.stop();
        }
      }
    }

    // ---- PgBouncer, one per replica ------------------------------------------------------
    {
      const row: PeerRow = {
        peer: pgbouncerBin.found ? `${pgbouncerBin.version.split('\n')[0]} x2` : 'PgBouncer x2',
        setup:
          `2 pg.Pools (max ${PER_REPLICA} each), round-robin per query -> one PgBouncer per replica (transaction mode, pool ${PER_REPLICA})` +
          ` vs db.read('${SQL}')`,
        notes: [],
      };
      rows.push(row);
      if (!pgbouncerBin.found) row.skipped = pgbouncerBin.why;
      else {
        const bouncers: PeerProcess[] = [];
        const pools: pg.Pool[] = [];
        try {
          for (const node of [r1, r2]) {
            const bouncer = await startPgbouncer({
              binary: pgbouncerBin.path,
              node,
              user,
              poolSize: PER_REPLICA,
            });
            bouncers.push(bouncer);
            pools.push(clientPool(bouncer.port, node, PER_REPLICA));
          }
          await Promise.all(pools.map((p) => openAll(p, PER_REPLICA)));
          const [a, b] = pools as [pg.Pool, pg.Pool];
          let next = 0;
          const peer = () => ((next++ & 1) === 0 ? a : b).query(SQL);
          const before = calls();
          row.result = await peerPairedRounds(PEER_CONCURRENCY, peer, oursRead, plan);
          row.notes.push(`PgBouncer side: round-robin over ${r1.name} and ${r2.name}`);
          row.notes.push(`ResilientPool calls per endpoint: ${spread(before)}`);
        } catch (err) {
          row.skipped = `FAILED: ${(err as Error).message}`;
        } finally {
          await Promise.all(pools.map(endPool));
          await Promise.all(bouncers.map((b) => b.stop()));
        }
      }
    }

    // ---- drizzle-orm withReplicas ----------------------------------------------------------
    rows.push(...(await drizzleRows(topology, ours, calls, spread, plan)));
  } finally {
    await ours.end({ timeout: 2_000 });
  }
  return { rows };
}

async function drizzleRows(
  topology: BenchTopology,
  ours: ResilientPool,
  calls: () => Array<{ name: string; calls: number }>,
  spread: (before: Array<{ name: string; calls: number }>) => string,
  plan: BenchPlan,
): Promise<PeerRow[]> {
  const fair: PeerRow = {
    peer: 'drizzle withReplicas',
    setup:
      `withReplicas(drizzle(pg.Pool max 1), [drizzle(pg.Pool max ${PER_REPLICA}) x2]).select(...)` +
      ` vs the same select via drizzle({ client: ResilientPool }), queryRouting 'auto'`,
    notes: [],
  };
  const literal: PeerRow = {
    peer: 'drizzle withReplicas vs db.read',
    setup: 'the same withReplicas select vs db.read() of the SQL text drizzle sends',
    notes: [],
  };
  let mod: {
    drizzle: typeof import('drizzle-orm/node-postgres').drizzle;
    withReplicas: typeof import('drizzle-orm/pg-core').withReplicas;
    sql: typeof import('drizzle-orm').sql;
  };
  try {
    const [np, core, orm] = await Promise.all([
      import('drizzle-orm/node-postgres'),
      import('drizzle-orm/pg-core'),
      import('drizzle-orm'),
    ]);
    mod = { drizzle: np.drizzle, withReplicas: core.withReplicas, sql: orm.sql };
  } catch (err) {
    const why = `drizzle-orm cannot be loaded (${(err as Error).message}): npm install --save-dev drizzle-orm`;
    fair.skipped = why;
    literal.skipped = why;
    return [fair, literal];
  }
  const { drizzle, withReplicas, sql } = mod;
  const primary = topology.primary.createPool({ max: 1 });
  const replicaPools = topology.replicas.slice(0, 2).map((r) => r.createPool({ max: PER_REPLICA }));
  try {
    await Promise.all(replicaPools.map((p) => openAll(p, PER_REPLICA)));
    const [d1, d2] = replicaPools.map((client) => drizzle({ client }));
    const peerDb = withReplicas(drizzle({ client: primary }), [d1!, d2!]);
    // drizzle has no table-less select; a one-row VALUES list is the nearest thing to SELECT 1.
    const select = (db: Pick<typeof peerDb, 'select'>) =>
      db.select({ one: sql<number>`1` }).from(sql`(values (1)) as t(x)`);
    // `as unknown as pg.Pool`: what drizzle's node-postgres driver is typed to take.
    const oursDb = drizzle({ client: ours as unknown as pg.Pool });
    const text = select(peerDb).toSQL().sql;
    fair.setup += `; SQL: ${text}`;
    literal.setup += ` (${text})`;
    const peer = () => select(peerDb).execute();
    const opened = () => replicaPools.map((p) => p.totalCount);
    for (const [row, oursSide] of [
      [fair, () => select(oursDb).execute()],
      [literal, () => ours.read(text)],
    ] as const) {
      try {
        const before = calls();
        row.result = await peerPairedRounds(PEER_CONCURRENCY, peer, oursSide, plan);
        row.notes.push(`ResilientPool calls per endpoint: ${spread(before)}`);
        row.notes.push(
          `withReplicas picks a replica at random per select; connections open per replica pool: ${opened().join(' / ')}`,
        );
      } catch (err) {
        row.skipped = `FAILED: ${(err as Error).message}`;
      }
    }
  } finally {
    await Promise.all([primary, ...replicaPools].map(endPool));
  }
  return [fair, literal];
}

/**
 * Ends a client pool, bounded: after a round that timed out a call may still hold a client, and
 * pg's end() waits for it. The server-side stop that follows ends such a connection anyway.
 */
async function endPool(pool: pg.Pool): Promise<void> {
  await Promise.race([pool.end().catch(() => {}), delay(2_000)]);
}

/**
 * Opens `count` connections of `pool` at once and runs a query on each, before any round: every
 * side starts with its connections (and a proxy with its server connections) already made, so
 * no measured round pays for SCRAM logins.
 */
async function openAll(pool: pg.Pool, count: number): Promise<void> {
  const clients: pg.PoolClient[] = [];
  try {
    await within(
      (async () => {
        const settled = await Promise.allSettled(
          Array.from({ length: count }, () => pool.connect()),
        );
        for (const s of settled) if (s.status === 'fulfilled') clients.push(s.value);
        const failed = settled.find((s) => s.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        await Promise.all(clients.map((c) => c.query(SQL)));
      })(),
      30_000,
      `opening ${count} connections`,
    );
  } finally {
    for (const c of clients) c.release();
  }
}

export function printPeerBench(result: PeerBenchResult, plan: BenchPlan): void {
  printTable(
    `6. Peers: reads over the same two replicas, ResilientPool vs what a user would pick instead, concurrency ${PEER_CONCURRENCY} (${plan.peerRounds} alternating round pairs of ${plan.peerRoundMs} ms; p50/p99 over every call)`,
    [
      'peer',
      'peer ops/s',
      'RP ops/s',
      'ratio',
      'pair-median ratio',
      'pair range',
      'read the ratio as',
      'p50/p99 ms peer',
      'p50/p99 ms RP',
      'node CPU µs/op peer/RP',
      'errors peer/RP',
    ],
    result.rows.map((row) => {
      const r = row.result;
      if (r === undefined) {
        return [
          row.peer,
          '-',
          '-',
          '-',
          '-',
          '-',
          row.skipped?.startsWith('FAILED') ? 'FAILED' : 'skipped',
          '-',
          '-',
          '-',
          '-',
        ];
      }
      return [
        row.peer,
        fmtInt(r.peerMedian),
        fmtInt(r.oursMedian),
        fmtRatio(r.ratio),
        fmtRatio(r.medianPairRatio),
        `${fmtRatio(r.minPairRatio)}-${fmtRatio(r.maxPairRatio)}`,
        PEER_READ_AS,
        `${fmtMs(r.peerP50Us)}/${fmtMs(r.peerP99Us)}`,
        `${fmtMs(r.oursP50Us)}/${fmtMs(r.oursP99Us)}`,
        `${r.peerCpuUsPerOp.toFixed(1)}/${r.oursCpuUsPerOp.toFixed(1)}`,
        `${r.peerErrors}/${r.oursErrors}`,
      ];
    }),
  );
  if (result.problem !== undefined) note(`peer rows skipped: ${result.problem}`);
  for (const row of result.rows) {
    note(`${row.peer}: ${row.setup}`);
    if (row.skipped !== undefined)
      note(`  ${row.skipped.startsWith('FAILED') ? '' : 'skipped: '}${row.skipped}`);
    const r = row.result;
    if (r !== undefined) note(`  pair ratios: ${r.pairRatios.map(fmtRatio).join(' ')}`);
    for (const n of row.notes) note(`  ${n}`);
    if (r?.firstError !== undefined) note(`  first error: ${r.firstError}`);
  }
}

/** One summary line per row. */
export function peerSummary(row: PeerRow): string {
  const r = row.result;
  if (r === undefined) return `  peer      ${row.peer}: ${row.skipped ?? 'not run'}`;
  return (
    `  peer      ${row.peer.padEnd(33)} c=${r.concurrency}  ratio ${fmtRatio(r.ratio)} [${PEER_READ_AS}]` +
    `  p99 RP ${fmtMs(r.oursP99Us)} ms vs peer ${fmtMs(r.peerP99Us)} ms`
  );
}

export function jsonPeers(result: PeerBenchResult) {
  return {
    problem: result.problem ?? null,
    readRatioAs: PEER_READ_AS,
    rows: result.rows.map((row) => ({
      peer: row.peer,
      setup: row.setup,
      skipped: row.skipped ?? null,
      notes: row.notes,
      result:
        row.result === undefined
          ? null
          : {
              concurrency: row.result.concurrency,
              rounds: row.result.rounds,
              roundMs: row.result.roundMs,
              peerOpsPerSec: round(row.result.peerMedian, 0),
              oursOpsPerSec: round(row.result.oursMedian, 0),
              ratio: round(row.result.ratio),
              medianPairRatio: round(row.result.medianPairRatio),
              pairRatios: row.result.pairRatios.map((x) => round(x)),
              latencyMs: {
                peer: {
                  p50: round(row.result.peerP50Us / 1000),
                  p99: round(row.result.peerP99Us / 1000),
                },
                ours: {
                  p50: round(row.result.oursP50Us / 1000),
                  p99: round(row.result.oursP99Us / 1000),
                },
              },
              cpuUsPerOp: {
                peer: round(row.result.peerCpuUsPerOp, 2),
                ours: round(row.result.oursCpuUsPerOp, 2),
              },
              errors: { peer: row.result.peerErrors, ours: row.result.oursErrors },
            },
    })),
  };
}
