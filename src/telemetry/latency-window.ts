/**
 * Per-endpoint latency percentiles over a rolling window, cheap enough to record every query.
 *
 * A fixed log-linear histogram over integer microseconds: durations below 16 µs get one bucket
 * per microsecond; above that, every power of two [2^e, 2^(e+1)) is split into 16 equal
 * sub-buckets, so a bucket is never wider than 1/16 of its lower bound. The top of the range is
 * 2^30 µs (about 17.9 minutes); longer durations are counted in the top bucket (their exact
 * maximum is still kept). That is 432 buckets, one `Uint32Array` per rotation slot; the bucket
 * index is found with `Math.clz32` and shifts, so `record()` does no allocation, no logarithm
 * and no division. The window rolls by whole slots: `rotate()` clears the oldest slot and makes
 * it the current one, the way the breaker's health window rolls its counts.
 *
 * Accuracy. A percentile is the nearest-rank value (the smallest recorded duration with at
 * least q of the samples at or below it), reported as the exclusive upper bound of the bucket
 * holding it, clamped to the window's exact maximum. So a reported percentile is never below
 * the true one and exceeds it by at most 6.25% (or by 1 µs below 16 µs); `summary()` then
 * rounds to 0.01 ms. The upper bound rather than the midpoint because the numbers feed SLO
 * views and hedge delays, where erring on the slow side is the safe side (a midpoint would halve
 * the error but could under-report), and because it is HdrHistogram's convention too.
 *
 * Bucket counts are summed per slot when asked rather than kept in a running total, so the hot
 * path is one increment and one compare; the count is derived from the buckets for the same
 * reason.
 */

/** Latency percentiles over the window, in milliseconds (rounded to 0.01 ms); null when nothing was recorded. */
export interface LatencySummary {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

/** The summary of a window with no samples (or of an endpoint that keeps none). */
export const EMPTY_LATENCY: LatencySummary = Object.freeze({
  count: 0,
  p50: null,
  p90: null,
  p99: null,
  max: null,
});

/** log2 of the sub-buckets per power of two: 16 sub-buckets bound the error at 1/16 = 6.25%. */
const SUB_BITS = 4;
const SUB_COUNT = 1 << SUB_BITS;
const SUB_MASK = SUB_COUNT - 1;
/** Durations are clamped below 2^30 µs (~17.9 min); also keeps `| 0` clear of int32 overflow. */
const TOP_EXPONENT = 30;
const LIMIT_US = 2 ** TOP_EXPONENT;
/** 16 one-microsecond buckets, then 16 sub-buckets for each exponent 4..29. */
export const LATENCY_BUCKETS = (TOP_EXPONENT - SUB_BITS + 1) * SUB_COUNT;
const LAST_BUCKET = LATENCY_BUCKETS - 1;

/** Bucket index of a duration in whole microseconds (0 <= us < LIMIT_US). */
function bucketOf(us: number): number {
  if (us < SUB_COUNT) return us;
  const exponent = 31 - Math.clz32(us);
  return ((exponent - SUB_BITS + 1) << SUB_BITS) + ((us >>> (exponent - SUB_BITS)) & SUB_MASK);
}

/** Exclusive upper bound of a bucket, in microseconds: every duration in it is below this. */
function upperBoundUs(index: number): number {
  if (index < SUB_COUNT) return index + 1;
  const shift = (index >> SUB_BITS) - 1;
  return (SUB_COUNT + (index & SUB_MASK) + 1) * 2 ** shift;
}

function roundToHundredths(ms: number): number {
  return Math.round(ms * 100) / 100;
}

export class LatencyWindow {
  /** All slots back to back: slot s owns [s * LATENCY_BUCKETS, (s + 1) * LATENCY_BUCKETS). */
  private readonly buckets: Uint32Array;
  /** Exact largest duration recorded in each slot, in ms (0 when the slot is empty). */
  private readonly maxes: Float64Array;
  /** Scratch for summing the slots, reused so that queries only allocate their result. */
  private readonly merged: Float64Array;
  private readonly slots: number;
  private slot = 0;
  private offset = 0;

  /**
   * @param slots how many rotation slots the window spans (rotate() is called by the pool's
   *   housekeeping timer every `slotMs`; the window is `slots * slotMs`).
   * @default 6
   */
  constructor(slots = 6) {
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RangeError(`Expected \`slots\` to be a positive integer, got ${String(slots)}`);
    }
    this.slots = slots;
    this.buckets = new Uint32Array(slots * LATENCY_BUCKETS);
    this.maxes = new Float64Array(slots);
    this.merged = new Float64Array(LATENCY_BUCKETS);
  }

  /**
   * Records one duration in ms (a float from performance.now() differences; negative, NaN and
   * infinite values are ignored). Hot path: no allocation, no Math.log, a handful of ns.
   */
  record(ms: number): void {
    if (!(ms >= 0 && ms < Number.POSITIVE_INFINITY)) return;
    const us = ms * 1000;
    this.buckets[this.offset + (us < LIMIT_US ? bucketOf(us | 0) : LAST_BUCKET)]!++;
    if (ms > this.maxes[this.slot]!) this.maxes[this.slot] = ms;
  }

  /** Drops the oldest slot and starts a new one (rolling window). */
  rotate(): void {
    this.slot = (this.slot + 1) % this.slots;
    this.offset = this.slot * LATENCY_BUCKETS;
    this.buckets.fill(0, this.offset, this.offset + LATENCY_BUCKETS);
    this.maxes[this.slot] = 0;
  }

  /** Percentiles over all slots in the window. Allocates; called by stats(), not per query. */
  summary(): LatencySummary {
    const count = this.merge();
    if (count === 0) return { ...EMPTY_LATENCY };
    const max = this.max();
    const [p50, p90, p99] = this.valuesAt([0.5, 0.9, 0.99], count, max);
    return {
      count,
      p50: roundToHundredths(p50!),
      p90: roundToHundredths(p90!),
      p99: roundToHundredths(p99!),
      max: roundToHundredths(max),
    };
  }

  /**
   * Returns the q-quantile (0..1) over the window in ms, unrounded (same bound as the summary:
   * at most 6.25% above the true nearest-rank value, never above the maximum), or null when the
   * window is empty; used later for adaptive hedge delays (p95).
   */
  quantile(q: number): number | null {
    if (!(q >= 0 && q <= 1)) {
      throw new RangeError(`Expected \`q\` to be a number from 0 to 1, got ${String(q)}`);
    }
    const count = this.merge();
    if (count === 0) return null;
    return this.valuesAt([q], count, this.max())[0]!;
  }

  /** Sums the slots into `merged`; returns the sample count of the window. */
  private merge(): number {
    const { buckets, merged, slots } = this;
    merged.fill(0);
    let count = 0;
    for (let s = 0; s < slots; s++) {
      const base = s * LATENCY_BUCKETS;
      for (let i = 0; i < LATENCY_BUCKETS; i++) {
        const n = buckets[base + i]!;
        merged[i]! += n;
        count += n;
      }
    }
    return count;
  }

  private max(): number {
    let max = 0;
    for (const m of this.maxes) if (m > max) max = m;
    return max;
  }

  /** One walk over `merged` for quantiles given in ascending order; values in ms. */
  private valuesAt(quantiles: readonly number[], count: number, max: number): number[] {
    const values: number[] = [];
    let next = 0;
    let rank = Math.max(1, Math.ceil(quantiles[0]! * count));
    let seen = 0;
    for (let i = 0; i < LATENCY_BUCKETS && next < quantiles.length; i++) {
      seen += this.merged[i]!;
      while (next < quantiles.length && seen >= rank) {
        // The top bucket also holds everything clamped beyond the range: only max bounds it.
        values.push(i === LAST_BUCKET ? max : Math.min(upperBoundUs(i) / 1000, max));
        next++;
        if (next < quantiles.length) rank = Math.max(1, Math.ceil(quantiles[next]! * count));
      }
    }
    return values;
  }
}
