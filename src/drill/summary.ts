/**
 * Turns the recording into per-fault rows (time to detect, errors, retries, p99, time to
 * recover) and prints them as a table.
 */
import { percentile, type Recorder } from './recorder.js';
import type { DrillSample, FaultSummary, FaultWindow, InvariantResult } from './report-model.js';

/** Throughput back to this share of the baseline counts as recovered. */
const RECOVERED_SHARE = 0.8;

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

export function summarizeFault(
  fault: FaultWindow,
  next: FaultWindow | undefined,
  recorder: Recorder,
  baseline: { ops: number | null; p99: number | null },
  avoidedAt: number | null,
): FaultSummary {
  const horizon = next?.start ?? Number.POSITIVE_INFINITY;
  const opened = recorder.breakerChanges.find(
    (c) => c.endpoint === fault.target && c.state === 'open' && c.t >= fault.start && c.t < horizon,
  );
  // Recovered: after healing, every circuit closed again and throughput back near the baseline.
  const recovered = recorder.samples.find(
    (s) =>
      s.t >= fault.end &&
      s.t < horizon &&
      Object.values(s.endpoints).every((state) => state === 'closed') &&
      (baseline.ops === null || s.opsPerSec >= baseline.ops * RECOVERED_SHARE),
  );
  const until = recovered?.t ?? Math.min(horizon, recorder.now());
  const during = recorder.latenciesBetween(fault.start, fault.end);
  return {
    name: fault.name,
    target: fault.target,
    timeToDetectMs: firstOf(opened?.t, avoidedAt, fault.start),
    errorsSurfaced: recorder.countBetween(recorder.errorTimes, fault.start, until),
    retries: recorder.countBetween(recorder.retryTimes, fault.start, until),
    p99BaselineMs: baseline.p99,
    p99DuringMs: percentile(during, 99),
    timeToRecoverMs: recovered ? Math.max(0, Math.round(recovered.t - fault.end)) : null,
  };
}

/** The earlier of two detection times, as ms after `start`; null when neither happened. */
function firstOf(a: number | undefined, b: number | null, start: number): number | null {
  const times = [a, b].filter((t): t is number => typeof t === 'number');
  return times.length === 0 ? null : Math.max(0, Math.round(Math.min(...times) - start));
}

const cell = (v: number | null, unit = '') => (v === null ? '—' : `${Math.round(v)}${unit}`);

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
    'recover',
  ];
  const lines = rows.map((r) => [
    r.name,
    r.target,
    cell(r.timeToDetectMs, ' ms'),
    String(r.errorsSurfaced),
    String(r.retries),
    cell(r.p99BaselineMs, ' ms'),
    cell(r.p99DuringMs, ' ms'),
    cell(r.timeToRecoverMs, ' ms'),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cols: readonly string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [format(header), format(widths.map((w) => '-'.repeat(w))), ...lines.map(format)].join(
    '\n',
  );
}

export function invariantLines(invariants: readonly InvariantResult[]): string {
  return invariants.map((i) => `${i.ok ? 'PASS' : 'FAIL'}  ${i.name}: ${i.detail}`).join('\n');
}
