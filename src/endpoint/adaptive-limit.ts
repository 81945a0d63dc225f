/**
 * The adaptive concurrency limit of one endpoint: how many calls its gate lets through to the
 * server, following the measured time on the server, as Netflix's concurrency-limits does.
 *
 * Samples come from the pipeline, one per statement that the server answered: the time from
 * sending it to its answer (never the time spent waiting for a permit, which is our queue, not
 * the server's), the permits held when it answered, and whether it was dropped (timed out, or the
 * server was out of resources). They are gathered into windows of at least `windowMs` and
 * `minSamples`; each full window gives its mean time and the most calls in flight during it to
 * the algorithm, and a change in the limit goes to the gate. There is no timer: time is what the
 * samples carry, so a quiet endpoint costs nothing and its limit stays where it was.
 *
 * The algorithms sit behind `LimitAlgorithm` (one window in, the limit estimate out):
 *
 * - Gradient2: `gradient = clamp(tolerance × longRtt / windowRtt, 0.5, 1)`, then
 *   `limit ← limit × (1 − smoothing) + (limit × gradient + queueSize) × smoothing`, where longRtt
 *   is an exponential average over `longWindow` windows (the mean of the first ten while it
 *   warms up), decayed by 5% per window while it is more than twice the window's time, so the
 *   baseline comes back after a long overload.
 * - Vegas: `queued = ⌈limit × (1 − noLoadRtt / windowRtt)⌉` with noLoadRtt the fastest window
 *   seen (re-measured after `probeMultiplier × limit` windows, with jitter); a drop cuts the limit
 *   by log10(limit); otherwise no queue (at most log10(limit)) grows it by `beta`, a short one
 *   (below `alpha`) by log10(limit), a long one (above `beta`) cuts it by log10(limit); the
 *   result is smoothed.
 *
 * One departure from Netflix's, in both. A window with fewer than half the limit in flight was
 * paced by the callers, not by the server, so it never cuts the limit (as in Netflix's); but where
 * it shows no queueing (Gradient2's gradient 1, Vegas's queue within log10(limit)) it lets the
 * limit grow, where Netflix's holds it. Netflix's maximum is unbounded, so growing while the
 * callers are idle would lose the limit; ours is the pool's size, where a pool without the option
 * is anyway. So after an overload, ordinary traffic brings the limit back to the pool's size
 * within seconds, instead of leaving a stale low limit that refuses the next legitimate burst.
 *
 * Limits are kept as real numbers and given to the gate rounded down, within minLimit and
 * maxLimit (at most the pool's size).
 */
import type { EndpointLimitSettings } from '../options/adaptive-limit.js';

/** One window's measurement in, the new limit estimate (a real number) out. */
export interface LimitAlgorithm {
  update(rttMs: number, maxInFlight: number, didDrop: boolean): number;
  /** The baseline the latest windows are compared with, in ms; 0 before the first window. */
  readonly baselineMs: number;
}

/** What the limit is applied to (the endpoint's gate). */
export interface LimitTarget {
  setLimit(limit: number): void;
}

/** The limit and what it is made of, for stats(). */
export interface AdaptiveLimitSnapshot {
  limit: number;
  algorithm: 'gradient2' | 'vegas';
  /** The latest full window's mean time on the server, in ms (null before the first). */
  rttMs: number | null;
  /** What windows are compared with (long-run average, or fastest), in ms (null before). */
  baselineMs: number | null;
}

/** A time of 0 (a coarse clock) would divide by zero; nothing is answered faster than this. */
const MIN_RTT_MS = 0.001;

export class AdaptiveLimit {
  private readonly algorithm: LimitAlgorithm;
  private applied: number;
  // The current window.
  private windowStart = 0;
  private count = 0;
  private sumMs = 0;
  private maxInFlight = 0;
  private dropped = false;
  private lastRttMs = 0;

  constructor(
    private readonly settings: EndpointLimitSettings,
    private readonly target: LimitTarget,
    random: () => number = Math.random,
  ) {
    this.algorithm =
      settings.algorithm === 'vegas'
        ? new VegasLimit(settings, random)
        : new Gradient2Limit(settings);
    this.applied = settings.initialLimit;
    target.setLimit(this.applied);
  }

  /** The limit given to the gate. */
  get limit(): number {
    return this.applied;
  }

  /**
   * One statement the server answered: `rttMs` from sending it to its answer, `inFlight` the
   * permits held when it answered (itself included), `didDrop` whether it timed out or the server
   * was out of resources, `nowMs` a monotonic clock (performance.now()). Allocates nothing.
   */
  sample(rttMs: number, inFlight: number, didDrop: boolean, nowMs: number): void {
    if (this.count === 0) this.windowStart = nowMs;
    this.count++;
    this.sumMs += rttMs;
    if (inFlight > this.maxInFlight) this.maxInFlight = inFlight;
    if (didDrop) this.dropped = true;
    if (nowMs - this.windowStart < this.settings.windowMs) return;
    const { count, sumMs, maxInFlight, dropped } = this;
    this.count = 0;
    this.sumMs = 0;
    this.maxInFlight = 0;
    this.dropped = false;
    // Too few answers to say anything (a quiet endpoint): the window is dropped.
    if (count < this.settings.minSamples) return;
    const windowRtt = Math.max(MIN_RTT_MS, sumMs / count);
    this.lastRttMs = windowRtt;
    const estimate = this.algorithm.update(windowRtt, maxInFlight, dropped);
    const next = Math.floor(estimate);
    if (next !== this.applied) {
      this.applied = next;
      this.target.setLimit(next);
    }
  }

  snapshot(): AdaptiveLimitSnapshot {
    const baseline = this.algorithm.baselineMs;
    return {
      limit: this.applied,
      algorithm: this.settings.algorithm,
      rttMs: this.lastRttMs === 0 ? null : round2(this.lastRttMs),
      baselineMs: baseline === 0 ? null : round2(baseline),
    };
  }
}

/** Gradient2, as in Netflix's Gradient2Limit (see the file's comment). */
export class Gradient2Limit implements LimitAlgorithm {
  private estimate: number;
  private readonly longRtt: ExponentialAverage;
  private readonly minLimit: number;
  private readonly maxLimit: number;
  private readonly tolerance: number;
  private readonly smoothing: number;
  private readonly queueSize: number;

  constructor(settings: EndpointLimitSettings & { algorithm: 'gradient2' }) {
    this.estimate = settings.initialLimit;
    this.minLimit = settings.minLimit;
    this.maxLimit = settings.maxLimit;
    this.tolerance = settings.tolerance;
    this.smoothing = settings.smoothing;
    this.queueSize = settings.queueSize;
    this.longRtt = new ExponentialAverage(settings.longWindow, 10);
  }

  get baselineMs(): number {
    return this.longRtt.value;
  }

  /** Drops are not looked at (as in Netflix's): only the time on the server counts. */
  update(rttMs: number, maxInFlight: number, _didDrop: boolean): number {
    const longRtt = this.longRtt.add(rttMs);
    // Latency back to normal after a long overload: pull the baseline down faster than the
    // average alone would, or the limit would stay high on an inflated baseline.
    if (longRtt / rttMs > 2) this.longRtt.scale(0.95);
    // Faster than the baseline counts as 1 (no queueing); a cut is at most half per window, so an
    // outlier cannot collapse the limit.
    const gradient = Math.max(0.5, Math.min(1, (this.tolerance * longRtt) / rttMs));
    // Paced by the callers: no cut (see the file's comment on growing).
    if (gradient < 1 && maxInFlight < this.estimate / 2) return this.estimate;
    const target = this.estimate * gradient + this.queueSize;
    const next = this.estimate * (1 - this.smoothing) + target * this.smoothing;
    this.estimate = Math.max(this.minLimit, Math.min(this.maxLimit, next));
    return this.estimate;
  }
}

/** Vegas, as in Netflix's VegasLimit (see the file's comment). */
export class VegasLimit implements LimitAlgorithm {
  private estimate: number;
  private noLoadRtt = 0;
  private probeCount = 0;
  private probeJitter: number;
  private readonly minLimit: number;
  private readonly maxLimit: number;
  private readonly alpha: number | undefined;
  private readonly beta: number | undefined;
  private readonly smoothing: number;
  private readonly probeMultiplier: number;

  constructor(
    settings: EndpointLimitSettings & { algorithm: 'vegas' },
    private readonly random: () => number,
  ) {
    this.estimate = settings.initialLimit;
    this.minLimit = settings.minLimit;
    this.maxLimit = settings.maxLimit;
    this.alpha = settings.alpha;
    this.beta = settings.beta;
    this.smoothing = settings.smoothing;
    this.probeMultiplier = settings.probeMultiplier;
    this.probeJitter = this.nextJitter();
  }

  get baselineMs(): number {
    return this.noLoadRtt;
  }

  update(rttMs: number, maxInFlight: number, didDrop: boolean): number {
    this.probeCount++;
    if (this.probeJitter * this.probeMultiplier * this.estimate <= this.probeCount) {
      // Re-measure the fastest time: a server that got slower for good must not be cut forever.
      this.probeJitter = this.nextJitter();
      this.probeCount = 0;
      this.noLoadRtt = rttMs;
      return this.estimate;
    }
    if (this.noLoadRtt === 0 || rttMs < this.noLoadRtt) {
      this.noLoadRtt = rttMs;
      return this.estimate;
    }
    const step = log10Root(this.estimate);
    const queued = Math.ceil(this.estimate * (1 - this.noLoadRtt / rttMs));
    let next: number;
    if (didDrop) {
      next = this.estimate - step;
    } else if (queued <= step) {
      // No queueing: grow, even when paced by the callers (see the file's comment).
      next = this.estimate + (this.beta ?? 6 * step);
    } else if (maxInFlight * 2 < this.estimate) {
      return this.estimate;
    } else if (queued < (this.alpha ?? 3 * step)) {
      next = this.estimate + step;
    } else if (queued > (this.beta ?? 6 * step)) {
      next = this.estimate - step;
    } else {
      return this.estimate;
    }
    next = Math.max(this.minLimit, Math.min(this.maxLimit, next));
    this.estimate = (1 - this.smoothing) * this.estimate + this.smoothing * next;
    return this.estimate;
  }

  /** From 0.5 to 1, so that endpoints started together do not all probe in the same window. */
  private nextJitter(): number {
    return 0.5 + 0.5 * this.random();
  }
}

/**
 * The mean of the first `warmup` values, then an exponential average with the weight of an
 * N-sample moving average (2 / (N + 1)).
 */
export class ExponentialAverage {
  value = 0;
  private count = 0;
  private sum = 0;
  private readonly factor: number;

  constructor(
    window: number,
    private readonly warmup: number,
  ) {
    this.factor = 2 / (window + 1);
  }

  add(sample: number): number {
    if (this.count < this.warmup) {
      this.count++;
      this.sum += sample;
      this.value = this.sum / this.count;
    } else {
      this.value = this.value * (1 - this.factor) + sample * this.factor;
    }
    return this.value;
  }

  scale(by: number): void {
    this.value *= by;
  }
}

/** Netflix's Log10RootFunction below 1000: the step of Vegas, 1 up to a limit of 99. */
function log10Root(limit: number): number {
  return Math.max(1, Math.floor(Math.log10(limit)));
}

function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}
