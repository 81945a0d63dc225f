/**
 * `npm run bench [-- --quick] [-- --json]`: what the wrapper costs, as ratios against raw
 * pg.Pool measured in the same run (DESIGN.md, "Rules that keep it fast").
 *
 *   1. real PostgreSQL, `SELECT 1`: ResilientPool.query vs pg.Pool.query, concurrency 1 and 32
 *   1b. the same at concurrency 32 with OpenTelemetry metrics, then tracing, on (the real SDK)
 *   2. in-process (FakePool, no I/O): ns per call the wrapper adds, concurrency 1 and 32
 *   2b. in-process: ns per call each feature adds when on (metrics, tracing, adaptive limit,
 *      failover buffering, consolidation, hedging), against the same pool with it off
 *   2c. in-process: the three metric points of a call, straight on the SDK (its floor) and
 *      through PoolMetrics
 *   3. refusals: ns per call for an open circuit and for a full queue
 *   4. real PostgreSQL: db.read over two replica pools vs pg.Pool.query, concurrency 32
 *   5. cache hit: db.read(..., { cache: true }) vs ioredis GET + JSON.parse (needs Redis)
 *   6. peers: reads over two replicas, ResilientPool vs pgpool-II, PgBouncer and drizzle's
 *      withReplicas, concurrency 32, with p99 (pgpool and PgBouncer from the system's packages)
 *
 * Every table says how to read its ratio: ops/s ratios (cases 1, 4, 6) are better higher,
 * ns/call ratios (cases 2, 5) better lower.
 *
 * Timings are reported, never asserted: the exit code is 0 unless the bench itself breaks.
 */
import os from 'node:os';
import { CACHE_READ_AS, type CacheBenchResult, cacheBench } from './cache.js';
import { parsePlan } from './config.js';
import { type FeatureCostResult, featureCost } from './feature-cost.js';
import { fingerprint } from './fingerprint.js';
import { type MetricsFloorResult, metricsFloor } from './metrics-floor.js';
import { fakeOverhead, type OverheadResult } from './overhead.js';
import {
  jsonPeers,
  type PeerBenchResult,
  peerBench,
  peerSummary,
  printPeerBench,
} from './peers/index.js';
import { type PgCaseResult, queryVsRaw, readVsRaw } from './real-pg.js';
import { circuitOpenCost, queueFullCost, type RejectionResult, references } from './rejection.js';
import { type BenchServer, openServer } from './server.js';
import { fmtInt, fmtNs, fmtRatio, round } from './stats.js';
import { note, printTable } from './table.js';
import { IN_PROCESS_VARIANTS, METRICS_ON, TRACING_ON } from './variants.js';

const plan = parsePlan(process.argv.slice(2));

/** How to read each kind of ratio, printed next to it. */
const READ_OPS = 'wrapped / raw ops/s; higher is better';
const READ_NS = 'wrapped / raw ns/call; lower is better';
const READ_CACHE = CACHE_READ_AS;
const started = performance.now();

console.log(
  `resilient-pool bench (${plan.quick ? 'quick' : 'full'}): node ${process.version}, ` +
    `${os.cpus().length} cpus, ${os.cpus()[0]?.model ?? 'unknown cpu'}, load average ${loadAverage()}`,
);

const source = fingerprint(new URL('../src/', import.meta.url));
console.log(`src: ${source.hash} (${source.files} files, last changed ${source.newest})`);

let server: BenchServer | undefined;
let serverVersion = '';
let serverProblem: string | undefined;
try {
  server = await openServer();
  const probe = server.createPool({ max: 1 });
  try {
    serverVersion =
      (await probe.query<{ v: string }>('SELECT current_setting($1) AS v', ['server_version']))
        .rows[0]?.v ?? '';
  } finally {
    await probe.end();
  }
  const replicas = 'problem' in server.topology ? 0 : server.topology.replicas.length;
  console.log(
    `server: ${server.label} (PostgreSQL ${serverVersion}, ${server.source === 'embedded' ? 'embedded via startLocalCluster' : 'DATABASE_URL'}; ${replicas} replicas for case 6)`,
  );
} catch (err) {
  serverProblem = (err as Error).message ?? String(err);
  console.log(`server: none; real-server cases skipped (${serverProblem})`);
  // A server that started but does not answer is stopped now, not used.
  await server?.stop().catch(() => {});
  server = undefined;
}

const pgResults: PgCaseResult[] = [];
const telemetryResults: PgCaseResult[] = [];
const featureCosts: FeatureCostResult[] = [];
let floorResult: MetricsFloorResult | undefined;
let readResult: PgCaseResult | undefined;
let cacheResult: CacheBenchResult | undefined;
let peerResult: PeerBenchResult | undefined;
const failures: string[] = [];
const overhead: OverheadResult[] = [];
const rejections: RejectionResult[] = [];
let strayErrors = 0;
const notes: string[] = [];

try {
  // ---- 1. real server, query vs raw ---------------------------------------------------------
  if (server !== undefined) {
    const srv = server;
    for (const concurrency of [1, 32]) {
      const result = await attempt(`case 1 (c=${concurrency})`, () =>
        queryVsRaw(srv, concurrency, plan),
      );
      if (result !== undefined) pgResults.push(result);
    }
    printPgTable(
      `1. Real PostgreSQL, SELECT 1: ResilientPool.query vs pg.Pool.query (${plan.pgRounds} alternating round pairs of ${plan.pgRoundMs} ms, same pool, max = concurrency)`,
      pgResults,
    );
    for (const variant of [METRICS_ON, TRACING_ON]) {
      const result = await attempt(`case 1b (${variant.label})`, () =>
        queryVsRaw(srv, 32, plan, variant),
      );
      if (result !== undefined) telemetryResults.push(result);
    }
    printPgTable(
      `1b. Real PostgreSQL, SELECT 1, concurrency 32, with OpenTelemetry on (the real SDK: a periodic metric reader, a batch span processor exporting nowhere) vs pg.Pool.query`,
      telemetryResults,
    );
  }

  // ---- 2. in-process overhead ---------------------------------------------------------------
  for (const concurrency of [1, 32]) {
    const result = await attempt(`case 2 (c=${concurrency})`, () =>
      fakeOverhead(concurrency, plan),
    );
    if (result !== undefined) overhead.push(result);
  }
  printTable(
    `2. In-process, FakePool (no I/O): ResilientPool.query vs connect()+query()+release() (${plan.cpuRounds} round pairs of ${fmtInt(plan.cpuCalls)} calls)`,
    [
      'concurrency',
      'raw ns/call',
      'wrapped ns/call',
      'overhead ns',
      'pair-median overhead',
      'ratio',
      'pair-median ratio',
      'read the ratio as',
    ],
    overhead.map((o) => [
      String(o.concurrency),
      fmtNs(o.rawMedianNs),
      fmtNs(o.wrappedMedianNs),
      fmtNs(o.overheadNs),
      fmtNs(o.medianPairOverheadNs),
      fmtRatio(o.ratio),
      fmtRatio(o.medianPairRatio),
      READ_NS,
    ]),
    true,
  );

  // ---- 2b. what each feature costs per call when on, in process -------------------------------
  for (const variant of IN_PROCESS_VARIANTS) {
    const result = await attempt(`case 2b (${variant.label})`, () =>
      featureCost(variant, 32, plan),
    );
    if (result !== undefined) featureCosts.push(result);
  }
  printTable(
    `2b. In-process, FakePool, concurrency 32: each feature on vs the same pool with it off (${plan.cpuRounds} round pairs of ${fmtInt(plan.cpuCalls)} calls)`,
    ['feature', 'off ns/call', 'on ns/call', 'cost ns/call', 'pair-median cost'],
    featureCosts.map((f) => [
      f.feature,
      fmtNs(f.offNs),
      fmtNs(f.onNs),
      fmtNs(f.costNs),
      fmtNs(f.medianPairCostNs),
    ]),
    true,
  );

  // ---- 2c. the SDK's floor under the metrics' cost ------------------------------------------
  floorResult = await attempt('case 2c', () => metricsFloor(plan));
  printTable(
    `2c. In-process: a call's three metric points (operation duration, wait time, use time), ${plan.cpuRounds} rounds of ${fmtInt(plan.cpuCalls)}`,
    ['recorded', 'ns/call'],
    floorResult === undefined
      ? []
      : [
          ["straight on the SDK's histograms (its floor)", fmtNs(floorResult.sdkNs)],
          ['through PoolMetrics (the pool adds its lookups)', fmtNs(floorResult.poolMetricsNs)],
        ],
    true,
  );

  // ---- 3. refusals --------------------------------------------------------------------------
  for (const [label, measure] of [
    ['case 3 (circuit open)', () => circuitOpenCost(plan)],
    ['case 3 (queue full)', () => queueFullCost(plan)],
  ] as const) {
    const result = await attempt(label, measure);
    if (result !== undefined) rejections.push(result);
  }
  rejections.push(...((await attempt('case 3 (references)', () => references(plan))) ?? []));
  printTable(
    `3. Refusal cost, sequential, caught by the caller (${plan.rejectRounds} rounds of ${fmtInt(plan.rejectCalls)} calls)`,
    ['refusal', 'median ns/call', 'min ns/call', 'read as', 'check'],
    rejections.map((r) => [r.kind, fmtNs(r.medianNs), fmtNs(r.minNs), r.readAs, r.check]),
    [3, 4],
  );

  // ---- 5. cache hit vs a raw Redis GET (needs Redis at REDIS_URL) ---------------------------
  cacheResult = await attempt('case 5 (cache)', () => cacheBench(plan));

  // ---- 4. real server, read routing ---------------------------------------------------------
  if (server !== undefined) {
    const srv = server;
    readResult = await attempt('case 4', () => readVsRaw(srv, 32, plan));
    printPgTable(
      `4. Real PostgreSQL, SELECT 1: db.read over 2 replica pools (max 16 each) vs pg.Pool.query (max 32), concurrency 32`,
      readResult === undefined ? [] : [readResult],
    );
  }

  // ---- 6. peers: pgpool-II, PgBouncer, drizzle withReplicas ---------------------------------
  if (server !== undefined) {
    const srv = server;
    peerResult = await attempt('case 6 (peers)', () => peerBench(srv, plan));
    if (peerResult !== undefined) printPeerBench(peerResult, plan);
    for (const row of peerResult?.rows ?? []) {
      if (row.skipped?.startsWith('FAILED') === true)
        failures.push(`case 6 (${row.peer}): ${row.skipped}`);
    }
  }
} finally {
  // Counted before the server stops: pg-pool's end() resolves before its sockets have closed,
  // so a fast shutdown right after it may still send those connections a 57P01.
  strayErrors = server?.stray.count ?? 0;
  try {
    await server?.stop();
  } catch (err) {
    failures.push(`stopping the server: ${(err as Error).message}`);
  }
}

// ---- summary ----------------------------------------------------------------------------------
console.log('\nSummary (each line says how to read its ratio; 1.000 = no cost)');
for (const r of pgResults) {
  console.log(pgSummary('query', r));
}
for (const r of telemetryResults) {
  console.log(`${pgSummary('query', r)} with ${r.case.replace(/^query, /, '')}`);
}
if (readResult !== undefined) {
  console.log(pgSummary('read ', readResult));
}
for (const o of overhead) {
  console.log(
    `  in-proc   query   c=${String(o.concurrency).padEnd(2)}  ratio ${fmtRatio(o.ratio)} [${READ_NS}]  overhead ${fmtNs(o.overheadNs)} ns/call (pair median ${fmtNs(o.medianPairOverheadNs)} ns)`,
  );
}
for (const f of featureCosts) {
  console.log(
    `  in-proc   c=32  ${f.feature}: +${fmtNs(f.costNs)} ns/call (pair median ${fmtNs(f.medianPairCostNs)} ns)`,
  );
}
if (floorResult !== undefined) {
  console.log(
    `  in-proc   metrics: the SDK's three records ${fmtNs(floorResult.sdkNs)} ns/call, through PoolMetrics ${fmtNs(floorResult.poolMetricsNs)} ns/call`,
  );
}
for (const r of rejections.filter((x) => !x.kind.startsWith('ref:'))) {
  console.log(`  refusal   ${r.kind.padEnd(13)} ${fmtNs(r.medianNs)} ns/call [${r.readAs}]`);
}
for (const c of cacheResult?.cases ?? []) {
  console.log(
    `  cache hit c=${String(c.concurrency).padEnd(2)}  ratio ${fmtRatio(c.ratio)} [${READ_CACHE}]  (db.read cached ${fmtNs(c.cachedMedianNs)} ns vs GET+parse ${fmtNs(c.rawMedianNs)} ns; pair median ${fmtRatio(c.medianPairRatio)})`,
  );
}
if (peerResult?.problem !== undefined) console.log(`  peer rows skipped: ${peerResult.problem}`);
for (const row of peerResult?.rows ?? []) console.log(peerSummary(row));
if (serverProblem !== undefined) console.log(`  real-server cases skipped: ${serverProblem}`);
if (strayErrors > 0) {
  console.log(
    `  WARNING: ${strayErrors} connection error(s) outside queries (server died or restarted?): ${server?.stray.first}`,
  );
}
for (const n of notes) console.log(`  note: ${n}`);
for (const f of failures) console.log(`  FAILED ${f}`);
const totalS = (performance.now() - started) / 1000;
console.log(`  total time ${totalS.toFixed(1)} s; load average at the end ${loadAverage()}`);

if (plan.json) {
  const summary = {
    mode: plan.quick ? 'quick' : 'full',
    node: process.version,
    src: source,
    cpus: os.cpus().length,
    loadAverage: os.loadavg().map((l) => round(l, 2)),
    server:
      server === undefined
        ? null
        : { address: server.label, source: server.source, version: serverVersion },
    serverProblem: serverProblem ?? null,
    strayConnectionErrors: strayErrors,
    realQuery: pgResults.map(jsonPg),
    realQueryWithTelemetry: telemetryResults.map(jsonPg),
    featureCosts: featureCosts.map((f) => ({
      feature: f.feature,
      concurrency: f.concurrency,
      offNsPerCall: round(f.offNs, 1),
      onNsPerCall: round(f.onNs, 1),
      costNsPerCall: round(f.costNs, 1),
      medianPairCostNs: round(f.medianPairCostNs, 1),
    })),
    metricsFloor:
      floorResult === undefined
        ? null
        : {
            sdkNsPerCall: round(floorResult.sdkNs, 1),
            poolMetricsNsPerCall: round(floorResult.poolMetricsNs, 1),
          },
    realRead: readResult === undefined ? null : jsonPg(readResult),
    readRatioAs: {
      realQuery: READ_OPS,
      realRead: READ_OPS,
      inProcess: READ_NS,
      cacheHit: READ_CACHE,
    },
    cacheHit:
      cacheResult?.cases.map((c) => ({
        concurrency: c.concurrency,
        cachedNsPerCall: round(c.cachedMedianNs, 1),
        rawGetParseNsPerCall: round(c.rawMedianNs, 1),
        ratio: round(c.ratio),
        medianPairRatio: round(c.medianPairRatio),
      })) ?? null,
    inProcess: overhead.map((o) => ({
      concurrency: o.concurrency,
      calls: o.calls,
      rounds: o.rounds,
      rawNsPerCall: round(o.rawMedianNs, 1),
      wrappedNsPerCall: round(o.wrappedMedianNs, 1),
      overheadNsPerCall: round(o.overheadNs, 1),
      medianPairOverheadNs: round(o.medianPairOverheadNs, 1),
      ratio: round(o.ratio),
      medianPairRatio: round(o.medianPairRatio),
    })),
    refusals: rejections.map((r) => ({
      kind: r.kind,
      medianNsPerCall: round(r.medianNs, 1),
      minNsPerCall: round(r.minNs, 1),
      calls: r.calls,
      rounds: r.rounds,
      check: r.check,
      readAs: r.readAs,
    })),
    peers: peerResult === undefined ? null : jsonPeers(peerResult),
    notes,
    failures,
    totalSeconds: round(totalS, 1),
  };
  console.log(`\n${JSON.stringify(summary, null, 2)}`);
}

// A refused call in case 3 leaves the pool's own acquire timer armed (the hung connect of the
// permit holder); nothing else is pending, so exit now rather than wait for it.
process.exit(0);

function printPgTable(title: string, results: readonly PgCaseResult[]): void {
  printTable(
    title,
    [
      'case',
      'conc',
      'raw ops/s',
      'wrapped ops/s',
      'ratio',
      'pair-median ratio',
      'pair range',
      'read the ratio as',
      'node CPU µs/op raw/wrapped',
      'errors',
      'connections',
    ],
    results.map((r) => [
      r.case,
      String(r.concurrency),
      fmtInt(r.rawMedian),
      fmtInt(r.wrappedMedian),
      fmtRatio(r.ratioOfMedians),
      fmtRatio(r.medianPairRatio),
      `${fmtRatio(r.minPairRatio)}-${fmtRatio(r.maxPairRatio)}`,
      READ_OPS,
      `${r.rawCpuUsPerOp.toFixed(1)}/${r.wrappedCpuUsPerOp.toFixed(1)}`,
      `${r.rawErrors}/${r.wrappedErrors}`,
      r.connections,
    ]),
    [7, 10],
  );
  for (const r of results) {
    note(`${r.case} c=${r.concurrency} pair ratios: ${r.pairRatios.map(fmtRatio).join(' ')}`);
    if (r.note !== undefined) note(r.note);
    if (r.firstError !== undefined) note(`first error: ${r.firstError}`);
  }
}

/** 1, 5 and 15 minute load averages: other work on the machine shows here, and in the figures. */
function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** Runs one case; a case that fails is reported and the others still run. */
async function attempt<T>(label: string, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (err) {
    failures.push(`${label}: ${(err as Error).message ?? String(err)}`);
    console.log(`\n${label} FAILED: ${(err as Error).message ?? String(err)}`);
    return undefined;
  }
}

function pgSummary(kind: string, r: PgCaseResult): string {
  const pairs = `median of pair ratios ${fmtRatio(r.medianPairRatio)}, range ${fmtRatio(r.minPairRatio)}-${fmtRatio(r.maxPairRatio)}`;
  const cpu = `node CPU ${r.rawCpuUsPerOp.toFixed(1)} -> ${r.wrappedCpuUsPerOp.toFixed(1)} µs/op`;
  return `  real pg   ${kind}   c=${String(r.concurrency).padEnd(2)}  ratio ${fmtRatio(r.ratioOfMedians)} [${READ_OPS}]  (${pairs}; ${cpu})`;
}

function jsonPg(r: PgCaseResult) {
  return {
    case: r.case,
    concurrency: r.concurrency,
    rounds: r.rounds,
    roundMs: r.roundMs,
    rawOpsPerSec: round(r.rawMedian, 0),
    wrappedOpsPerSec: round(r.wrappedMedian, 0),
    ratio: round(r.ratioOfMedians),
    medianPairRatio: round(r.medianPairRatio),
    pairRatios: r.pairRatios.map((x) => round(x)),
    cpuUsPerOp: { raw: round(r.rawCpuUsPerOp, 2), wrapped: round(r.wrappedCpuUsPerOp, 2) },
    errors: { raw: r.rawErrors, wrapped: r.wrappedErrors },
    connections: r.connections,
  };
}
