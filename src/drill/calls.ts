/**
 * The drill's record of every call, and the questions asked of it. A call belongs to the window
 * in which it STARTED: one that hangs through a fault and completes just after it is counted in
 * the fault, where its latency was caused. Pure functions over plain data, so that the
 * attribution can be tested without a database.
 */
import type { CallSummary } from './report-model.js';

/** Where a call came from: the steady workload's readers and writers, or the overload burst. */
export type CallKind = 'read' | 'write' | 'overload';

/** One call, times in ms since the drill's start. */
export interface CallRecord {
  kind: CallKind;
  start: number;
  end: number;
  ok: boolean;
  /** The error's code (or `classify()` class) when it failed. */
  error?: string;
  /** It failed before anything reached the database (`classify()` says 'unavailable'). */
  refused?: boolean;
}

/** Nearest-rank percentile of an ascending array; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Latencies of `calls`, ascending. */
export function latencies(calls: readonly CallRecord[]): number[] {
  return calls.map((c) => c.end - c.start).sort((a, b) => a - b);
}

/** Calls that started in [from, to), optionally of one kind. */
export function startedIn(
  calls: readonly CallRecord[],
  from: number,
  to: number,
  kind?: CallKind,
): CallRecord[] {
  return calls.filter(
    (c) => c.start >= from && c.start < to && (kind === undefined || c.kind === kind),
  );
}

/** Calls that were running at some moment of [from, to): started before `to`, ended after `from`. */
export function overlapping(calls: readonly CallRecord[], from: number, to: number): CallRecord[] {
  return calls.filter((c) => c.start < to && c.end > from);
}

/** Calls of `kind` running at some instant of [from, to] (at the instant `from`, when equal). */
export function inFlightDuring(
  calls: readonly CallRecord[],
  from: number,
  to: number,
  kind: CallKind,
): number {
  let n = 0;
  for (const c of calls) if (c.kind === kind && c.start <= to && c.end > from) n++;
  return n;
}

/** p99 of the successful calls of `kind` started in [from, to), ms. */
export function p99Started(
  calls: readonly CallRecord[],
  from: number,
  to: number,
  kind?: CallKind,
): number | null {
  return percentile(latencies(startedIn(calls, from, to, kind).filter((c) => c.ok)), 99);
}

/** The slowest call, failed or not, that was running at some moment of [from, to). */
export function worstOverlapping(
  calls: readonly CallRecord[],
  from: number,
  to: number,
): CallSummary | null {
  let worst: CallRecord | undefined;
  for (const c of overlapping(calls, from, to)) {
    if (worst === undefined || c.end - c.start > worst.end - worst.start) worst = c;
  }
  if (worst === undefined) return null;
  return {
    kind: worst.kind,
    startedAt: Math.round(worst.start),
    latencyMs: Math.round((worst.end - worst.start) * 100) / 100,
    ok: worst.ok,
    error: worst.error ?? null,
  };
}

/** Failed calls by error code. */
export function errorsByCode(calls: readonly CallRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const c of calls) {
    if (c.ok) continue;
    const code = c.error ?? 'error';
    counts[code] = (counts[code] ?? 0) + 1;
  }
  return counts;
}

/**
 * From `t` to the first write acknowledged at or after it, ms; null when none was. After a
 * promotion every acknowledged write was acknowledged by the new primary (the old one is down).
 */
export function firstAckAfter(calls: readonly CallRecord[], t: number): number | null {
  let first = Number.POSITIVE_INFINITY;
  for (const c of calls)
    if (c.kind === 'write' && c.ok && c.end >= t && c.end < first) first = c.end;
  return Number.isFinite(first) ? Math.round(first - t) : null;
}

/** What the calls started in one sample window amount to. */
export interface WindowFigures {
  ok: number;
  errors: number;
  opsPerSec: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  worst: number | null;
}

const round2 = (ms: number | null) => (ms === null ? null : Math.round(ms * 100) / 100);

/**
 * The figures of each window `[ends[i-1], ends[i])` (the first from 0) for the calls that
 * started in it. `ends` ascending; calls started after the last end are left out.
 */
export function figuresByWindow(
  calls: readonly CallRecord[],
  ends: readonly number[],
): WindowFigures[] {
  const buckets: CallRecord[][] = ends.map(() => []);
  for (const c of calls) {
    // The first window whose end is after the start: binary search.
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ends[mid]! > c.start) hi = mid;
      else lo = mid + 1;
    }
    if (lo < ends.length) buckets[lo]!.push(c);
  }
  return buckets.map((bucket, i) => {
    const from = i === 0 ? 0 : ends[i - 1]!;
    const seconds = Math.max(0.001, (ends[i]! - from) / 1000);
    const okLatencies = latencies(bucket.filter((c) => c.ok));
    const all = latencies(bucket);
    return {
      ok: okLatencies.length,
      errors: bucket.length - okLatencies.length,
      opsPerSec: Math.round(okLatencies.length / seconds),
      p50: round2(percentile(okLatencies, 50)),
      p99: round2(percentile(okLatencies, 99)),
      max: round2(okLatencies.at(-1) ?? null),
      worst: round2(all.at(-1) ?? null),
    };
  });
}
