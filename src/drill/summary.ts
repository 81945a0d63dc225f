/**
 * Turns the recording into per-fault rows and prints them. Each call counts where it STARTED;
 * a fault's errors are the failed calls that overlapped it (running at its injection, or started
 * before its recovery), and its worst call is the slowest one that was running at some moment
 * of it. The figures for issue 12's bars are checked here too (goals, not invariants).
 */
import {
  type CallRecord,
  errorsByCode,
  firstAckAfter,
  inFlightDuring,
  latencies,
  overlapping,
  p99Started,
  percentile,
  startedIn,
  worstOverlapping,
} from './calls.js';
import type { BreakerChange, RoutingEvent } from './recorder.js';
import type {
  DrillSample,
  FaultSummary,
  FaultWindow,
  InvariantResult,
  LagFigures,
  OverloadFigures,
  RoutingChangeRecord,
  TargetCheck,
} from './report-model.js';

/** Throughput back to this share of the baseline counts as recovered. */
const RECOVERED_SHARE = 0.8;
/** "Before" a fault: the reads started in this long before the injection. */
const BEFORE_MS = 3_000;
/** Connection attempts are counted in this long after the heal. */
const AFTER_HEAL_MS = 1_000;
/** Routing states in which an endpoint gets no new call. */
const HELD_BACK = new Set(['lagging', 'ejected', 'down']);

/** What the summary reads of a drill's recording (the Recorder, or a synthetic one in tests). */
export interface Recording {
  readonly calls: readonly CallRecord[];
  /** One per second, calls attributed by their start. */
  readonly samples: readonly DrillSample[];
  readonly breakerChanges: readonly BreakerChange[];
  readonly routingEvents: readonly RoutingEvent[];
  /** The pool's `routing` events (absent in synthetic recordings of older tests). */
  readonly routingChanges?: readonly RoutingChangeRecord[];
  readonly retryTimes: readonly number[];
  /** Connection attempts, when each started, by wrapped pool. */
  readonly connects: ReadonlyArray<{ t: number; endpoint: string }>;
  /** When the recording ended, ms since start. */
  readonly endedAt: number;
}

/** A fault as played, with what the drill learnt while playing it. */
export interface PlayedFault extends FaultWindow {
  /** When the pool started avoiding the endpoint (detect.ts), or null. */
  avoidedAt: number | null;
  /** When the pool could start recovering: the heal, or the end of a one-off action. */
  recoveryFrom: number;
  /** Endpoints gone for good by the end of this fault. */
  retired: readonly string[];
  /** The overload burst's own figures. */
  overloadPlan?: Omit<
    OverloadFigures,
    | 'admitted'
    | 'refused'
    | 'failed'
    | 'admittedP99Ms'
    | 'refusalP99Ms'
    | 'errorsByCode'
    | 'admittedPerSec'
    | 'lowestLimit'
    | 'writeErrorsByCode'
  >;
}

export interface SummaryContext {
  baseline: { ops: number | null; p99: number | null };
  poolMax: number;
  maxLagMs: number;
}

function median(values: readonly number[]): number | null {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Median ops/s of the samples before the first fault. */
export function baselineOps(samples: readonly DrillSample[], firstFaultAt: number): number | null {
  return median(samples.filter((s) => s.t <= firstFaultAt && s.t > 1_000).map((s) => s.opsPerSec));
}

/** The steady workload's calls (the overload burst is measured on its own). */
export const steadyCalls = (calls: readonly CallRecord[]): CallRecord[] =>
  calls.filter((c) => c.kind !== 'overload');

/** The earliest of the signs that the pool noticed the fault, as ms after its start. */
function detectedAfter(fault: PlayedFault, rec: Recording, horizon: number): number | null {
  const within = (t: number) => t >= fault.start && t < horizon;
  const times: number[] = [];
  const opened = rec.breakerChanges.find(
    (c) => c.endpoint === fault.endpoint && c.state === 'open' && within(c.t),
  );
  if (opened) times.push(opened.t);
  const routed = rec.routingEvents.find(
    (e) =>
      e.endpoint === fault.endpoint && (e.event === 'down' || e.event === 'eject') && within(e.t),
  );
  if (routed) times.push(routed.t);
  const ejected = rec.routingChanges?.find(
    (c) => c.endpoint === fault.endpoint && c.state === 'ejected' && within(c.t),
  );
  if (ejected) times.push(ejected.t);
  if (fault.avoidedAt !== null) times.push(fault.avoidedAt);
  const heldBack = rec.samples.find((s) => {
    const routing = s.endpointState?.[fault.endpoint ?? '']?.routing;
    return within(s.t) && routing !== undefined && HELD_BACK.has(routing);
  });
  if (heldBack) times.push(heldBack.t);
  if (fault.name === 'overload') {
    const refused = rec.calls.find((c) => c.kind === 'overload' && c.refused && within(c.start));
    if (refused) times.push(refused.end);
  }
  return times.length === 0 ? null : Math.max(0, Math.round(Math.min(...times) - fault.start));
}

/**
 * The overload burst's figures: what was admitted and how fast, what was refused and how fast,
 * the lowest gate limits the samples showed, and the steady workload's writes that failed (`failed`:
 * the steady calls that failed and overlapped the fault).
 */
function overloadFigures(
  fault: PlayedFault,
  rec: Recording,
  failed: readonly CallRecord[],
): OverloadFigures | undefined {
  if (fault.overloadPlan === undefined) return undefined;
  const burst = startedIn(rec.calls, fault.start, fault.end, 'overload');
  const admitted = burst.filter((c) => c.ok);
  const refused = burst.filter((c) => !c.ok && c.refused);
  const lowestLimit: Record<string, number> = {};
  for (const s of rec.samples) {
    if (s.t <= fault.start || s.t > fault.end + AFTER_HEAL_MS) continue;
    for (const [name, state] of Object.entries(s.endpointState ?? {})) {
      if (state.limit === undefined) continue;
      lowestLimit[name] = Math.min(lowestLimit[name] ?? state.limit, state.limit);
    }
  }
  const seconds = Math.max(0.001, (fault.end - fault.start) / 1000);
  return {
    ...fault.overloadPlan,
    admitted: admitted.length,
    refused: refused.length,
    failed: burst.length - admitted.length - refused.length,
    admittedP99Ms: percentile(latencies(admitted), 99),
    refusalP99Ms: percentile(latencies(refused), 99),
    errorsByCode: errorsByCode(burst),
    admittedPerSec: Math.round(admitted.length / seconds),
    lowestLimit,
    writeErrorsByCode: errorsByCode(failed.filter((c) => c.kind === 'write')),
  };
}

function lagFigures(
  fault: PlayedFault,
  rec: Recording,
  boundMs: number,
  horizon: number,
): LagFigures {
  const endpoint = fault.endpoint ?? fault.target;
  const inFault = rec.samples.filter((s) => s.t > fault.start && s.t < horizon);
  let maxLagMs: number | null = null;
  let heldBackAt: number | null = null;
  let callsWhileHeldBack = 0;
  let heldBefore = false;
  for (const s of inFault) {
    const state = s.endpointState?.[endpoint];
    if (state === undefined) continue;
    if (state.lagMs !== null && s.t <= fault.end + AFTER_HEAL_MS) {
      maxLagMs = Math.max(maxLagMs ?? 0, state.lagMs);
    }
    const held = HELD_BACK.has(state.routing);
    if (held && heldBackAt === null) heldBackAt = s.t;
    // A window that ends held back may have begun before: only whole windows held back count.
    if (held && heldBefore) callsWhileHeldBack += state.calls;
    heldBefore = held;
  }
  return {
    boundMs,
    maxLagMs,
    heldBackAfterMs: heldBackAt === null ? null : Math.round(heldBackAt - fault.start),
    callsWhileHeldBack,
  };
}

const fmt = (v: number | null | undefined) =>
  v === null || v === undefined ? '—' : `${Math.round(v)}`;

/** Issue 12's bars that apply to this fault. */
export function targetChecks(row: FaultSummary, poolMax: number): TargetCheck[] {
  const checks: TargetCheck[] = [];
  if (row.name === 'primary-failover' || row.name === 'planned-switchover') {
    const bound = row.name === 'planned-switchover' ? 0 : (row.writesInFlightAtFault ?? 0);
    checks.push({
      name:
        row.name === 'planned-switchover'
          ? 'no error surfaced'
          : 'errors surfaced <= writes in flight at the fault',
      ok: row.errorsSurfaced <= bound,
      detail: `${row.errorsSurfaced} errors, bound ${bound}`,
    });
    const flowing = row.writesFlowingAfterMs ?? null;
    checks.push({
      name: 'writes flow to the new primary within 1 s of promotion',
      ok: flowing !== null && flowing <= 1_000,
      detail: `first write acknowledged ${fmt(flowing)} ms after the promotion`,
    });
  }
  if (row.name === 'replica-hang' || row.name === 'network-blackhole') {
    const before = row.readP99BeforeMs ?? null;
    const during = row.readP99DuringMs ?? null;
    checks.push({
      name: 'read p99 during <= 3x before',
      ok: before !== null && during !== null && during <= 3 * before,
      detail: `${fmt(during)} ms during, ${fmt(before)} ms before`,
    });
    checks.push({
      name: 'no read error',
      ok: (row.readErrors ?? 0) === 0,
      detail: `${row.readErrors ?? 0} read errors`,
    });
  }
  if (row.overload !== undefined) {
    const { admittedP99Ms, unloadedP99Ms, refusalP99Ms } = row.overload;
    checks.push({
      name: 'admitted p99 <= 2x unloaded p99',
      ok: admittedP99Ms !== null && unloadedP99Ms !== null && admittedP99Ms <= 2 * unloadedP99Ms,
      detail: `${fmt(admittedP99Ms)} ms admitted, ${fmt(unloadedP99Ms)} ms unloaded`,
    });
    checks.push({
      name: 'refusal p99 < 1 ms',
      ok: refusalP99Ms === null || refusalP99Ms < 1,
      detail:
        refusalP99Ms === null
          ? 'nothing was refused'
          : `${Math.round(refusalP99Ms * 1000) / 1000} ms`,
    });
  }
  const connects = Object.entries(row.connectsAfterRecovery ?? {});
  const worst = connects.reduce((w, [, n]) => Math.max(w, n), 0);
  checks.push({
    name: 'connection attempts per endpoint in the first second after recovery <= pool max',
    ok: worst <= poolMax,
    detail:
      connects.length === 0
        ? 'no new connection'
        : `${connects.map(([e, n]) => `${e} ${n}`).join(', ')} (max ${poolMax})`,
  });
  return checks;
}

export function summarizeFault(
  fault: PlayedFault,
  next: PlayedFault | undefined,
  rec: Recording,
  context: SummaryContext,
): FaultSummary {
  const horizon = next?.start ?? rec.endedAt;
  const retired = new Set(fault.retired);
  // The cache's breaker says nothing about a database fault (and on a busy machine it opens now
  // and then on its own 50 ms timeout): only a Redis fault waits for it.
  if (fault.endpoint !== 'redis') retired.add('redis');
  // Recovered: after healing, every circuit that can close closed again and throughput back near
  // the baseline.
  const recovered = rec.samples.find(
    (s) =>
      s.t >= fault.end &&
      s.t < horizon &&
      Object.entries(s.endpoints).every(
        ([name, state]) => state === 'closed' || retired.has(name),
      ) &&
      (context.baseline.ops === null || s.opsPerSec >= context.baseline.ops * RECOVERED_SHARE),
  );
  const until = recovered?.t ?? Math.min(horizon, rec.endedAt);
  const steady = steadyCalls(rec.calls);
  const failed = overlapping(steady, fault.start, until).filter((c) => !c.ok);
  const connects: Record<string, number> = {};
  for (const c of rec.connects) {
    if (c.t >= fault.recoveryFrom && c.t < fault.recoveryFrom + AFTER_HEAL_MS) {
      connects[c.endpoint] = (connects[c.endpoint] ?? 0) + 1;
    }
  }
  const lastSample = [...rec.samples].reverse().find((s) => s.t <= until);
  const row: FaultSummary = {
    name: fault.name,
    target: fault.target,
    timeToDetectMs: detectedAfter(fault, rec, horizon),
    errorsSurfaced: failed.length,
    errorsByCode: errorsByCode(failed),
    retries: rec.retryTimes.filter((t) => t >= fault.start && t < until).length,
    p99BaselineMs: context.baseline.p99,
    p99DuringMs: p99Started(steady, fault.start, fault.end),
    readP99BeforeMs: p99Started(steady, Math.max(0, fault.start - BEFORE_MS), fault.start, 'read'),
    readP99DuringMs: p99Started(steady, fault.start, fault.end, 'read'),
    readErrors: failed.filter((c) => c.kind === 'read').length,
    worstCall: worstOverlapping(steady, fault.start, fault.end),
    writesInFlightAtFault: inFlightDuring(
      steady,
      fault.start,
      fault.downAt ?? fault.start,
      'write',
    ),
    primaryNodeAfter: lastSample?.primaryNode ?? null,
    connectsAfterRecovery: connects,
    poolMax: context.poolMax,
    timeToRecoverMs: recovered ? Math.max(0, Math.round(recovered.t - fault.end)) : null,
  };
  if (fault.promotedAt !== undefined) {
    row.writesFlowingAfterMs = firstAckAfter(steady, fault.promotedAt);
  }
  const overload = overloadFigures(fault, rec, failed);
  if (overload !== undefined) row.overload = overload;
  if (fault.name === 'replica-lag') row.lag = lagFigures(fault, rec, context.maxLagMs, horizon);
  row.targets = targetChecks(row, context.poolMax);
  return row;
}

const cell = (v: number | null | undefined, unit = '') =>
  v === null || v === undefined ? '—' : `${Math.round(v)}${unit}`;

/** The end-of-drill table, plain text. */
export function summaryTable(rows: readonly FaultSummary[]): string {
  const header = [
    'fault',
    'target',
    'detect',
    'errors',
    'retries',
    'p99 base',
    'p99 during',
    'worst',
    'recover',
    'targets',
  ];
  const lines = rows.map((r) => {
    const targets = r.targets ?? [];
    return [
      r.name,
      r.target,
      cell(r.timeToDetectMs, ' ms'),
      String(r.errorsSurfaced),
      String(r.retries),
      cell(r.p99BaselineMs, ' ms'),
      cell(r.p99DuringMs, ' ms'),
      cell(r.worstCall?.latencyMs, ' ms'),
      cell(r.timeToRecoverMs, ' ms'),
      targets.length === 0 ? '—' : `${targets.filter((t) => t.ok).length}/${targets.length} met`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cols: readonly string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [format(header), format(widths.map((w) => '-'.repeat(w))), ...lines.map(format)].join(
    '\n',
  );
}

/** One paragraph per fault: its errors by code, the scenario's own figures, the bars missed. */
export function faultDetails(rows: readonly FaultSummary[]): string {
  return rows
    .map((r) => {
      const parts: string[] = [];
      const codes = Object.entries(r.errorsByCode ?? {});
      if (codes.length > 0) parts.push(`errors ${codes.map(([c, n]) => `${c} x${n}`).join(', ')}`);
      if ((r.readErrors ?? 0) > 0) parts.push(`${r.readErrors} of them reads`);
      if (r.writesInFlightAtFault !== undefined) {
        parts.push(`${r.writesInFlightAtFault} writes in flight at the fault`);
      }
      parts.push(`read p99 ${cell(r.readP99BeforeMs)} -> ${cell(r.readP99DuringMs)} ms`);
      if (r.worstCall) {
        const w = r.worstCall;
        parts.push(
          `worst call ${w.kind} ${cell(w.latencyMs)} ms${w.ok ? '' : ` (${w.error ?? 'failed'})`}`,
        );
      }
      if (r.writesFlowingAfterMs !== undefined) {
        parts.push(
          `writes flowing ${cell(r.writesFlowingAfterMs)} ms after promotion (primary: ${r.primaryNodeAfter ?? '?'})`,
        );
      }
      if (r.lag) {
        parts.push(
          `lag up to ${cell(r.lag.maxLagMs)} ms (bound ${r.lag.boundMs}), held back after ${cell(r.lag.heldBackAfterMs)} ms, ${r.lag.callsWhileHeldBack} calls while held back`,
        );
      }
      if (r.overload) {
        const o = r.overload;
        parts.push(
          `overload ${o.offeredPerSec}/s offered (capacity ${o.capacityPerSec}/s): ${o.admitted} admitted${o.admittedPerSec === undefined ? '' : ` (${o.admittedPerSec}/s)`} p99 ${cell(o.admittedP99Ms)} ms (unloaded ${cell(o.unloadedP99Ms)} ms), ${o.refused} refused p99 ${o.refusalP99Ms === null ? '—' : o.refusalP99Ms.toFixed(3)} ms, ${o.failed} failed otherwise`,
        );
        const limits = Object.entries(o.lowestLimit ?? {});
        if (limits.length > 0) {
          parts.push(`lowest limit ${limits.map(([e, n]) => `${e} ${n}`).join(', ')}`);
        }
        const writeErrors = Object.entries(o.writeErrorsByCode ?? {});
        parts.push(
          `write errors ${writeErrors.length === 0 ? 'none' : writeErrors.map(([c, n]) => `${c} x${n}`).join(', ')}`,
        );
      }
      const connects = Object.entries(r.connectsAfterRecovery ?? {});
      parts.push(
        `connection attempts in 1 s after recovery began: ${connects.length === 0 ? 'none' : connects.map(([e, n]) => `${e} ${n}`).join(', ')}`,
      );
      const missed = (r.targets ?? []).filter((t) => !t.ok);
      if (missed.length > 0) {
        parts.push(`missed: ${missed.map((t) => `${t.name} (${t.detail})`).join('; ')}`);
      }
      return `${r.name}: ${parts.join('; ')}`;
    })
    .join('\n');
}

export function invariantLines(invariants: readonly InvariantResult[]): string {
  return invariants.map((i) => `${i.ok ? 'PASS' : 'FAIL'}  ${i.name}: ${i.detail}`).join('\n');
}
