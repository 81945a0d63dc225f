/**
 * The public option types of the adaptive concurrency limit: `queue.adaptiveLimit`. They ship in
 * the .d.ts as written, so each option carries its JSDoc and `@default` (the values themselves
 * live in adaptive-limit.ts, next to their validation).
 */

/** What both algorithms take: the bounds of the limit and how samples are gathered. */
export interface AdaptiveLimitBaseOptions {
  /**
   * The lowest the limit goes, however slow the server answers.
   * @default 1
   */
  minLimit?: number;
  /**
   * The highest the limit goes. Never above the endpoint's `maxConcurrent` (the wrapped pool's
   * size): a larger value is lowered to it.
   * @default the endpoint's maxConcurrent
   */
  maxLimit?: number;
  /**
   * The limit to start from. The default starts where a pool without the option is, so nothing
   * is refused that would not have been before the first measurements.
   * @default maxLimit
   */
  initialLimit?: number;
  /**
   * Shortest span of one sample window, in ms. The limit changes at most once per window, from
   * the window's mean time on the server and the most calls in flight during it.
   * @default 100
   */
  windowMs?: number;
  /**
   * Fewest statements a window needs before it changes the limit; a window with fewer (a quiet
   * endpoint) is dropped.
   * @default 10
   */
  minSamples?: number;
}

/**
 * Gradient2 (Netflix concurrency-limits): the limit follows the ratio of a long-run average of the
 * time on the server to the latest window's, cut when the window is slower than `tolerance` times
 * the long-run average, grown by `queueSize` while it is not.
 */
export interface Gradient2LimitOptions extends AdaptiveLimitBaseOptions {
  /** @default 'gradient2' */
  algorithm?: 'gradient2';
  /**
   * How much slower than the long-run average a window may be before the limit is cut (1.5:
   * half as slow again). The admitted calls' time on the server settles near this multiple of the
   * unloaded time.
   * @default 1.5
   */
  tolerance?: number;
  /**
   * How far each window moves the limit toward its new estimate, from 0 (not at all) to 1 (all
   * the way). Smaller is steadier and slower to react.
   * @default 0.2
   */
  smoothing?: number;
  /**
   * Windows averaged into the long-run time on the server (an exponential average over this
   * many windows: about ten minutes of 100 ms windows, as Netflix's 600 windows of a second).
   * Longer keeps a long overload from passing for the new normal for longer.
   * @default 6000
   */
  longWindow?: number;
  /**
   * How many calls beyond the estimate the limit allows, so that it can grow while the server
   * keeps up. The limit settles near `capacity × tolerance + queueSize`.
   * @default 1
   */
  queueSize?: number;
}

/**
 * Vegas (Netflix concurrency-limits, after TCP Vegas): estimates the calls queued at the server
 * as `limit × (1 − fastest / latest)` and grows the limit while fewer than `alpha` queue, cuts it
 * when more than `beta` do. The fastest time is measured afresh now and then (a probe).
 */
export interface VegasLimitOptions extends AdaptiveLimitBaseOptions {
  algorithm: 'vegas';
  /**
   * Queued calls below which the limit grows.
   * @default 3 × max(1, ⌊log10(limit)⌋)
   */
  alpha?: number;
  /**
   * Queued calls above which the limit is cut. Must be above `alpha`.
   * @default 6 × max(1, ⌊log10(limit)⌋)
   */
  beta?: number;
  /**
   * How far each window moves the limit toward its new value, from 0 to 1.
   * @default 1
   */
  smoothing?: number;
  /**
   * The fastest time on the server is measured afresh after about this many times the limit in
   * windows (with jitter), so that a server that got slower for good is not cut forever.
   * @default 30
   */
  probeMultiplier?: number;
}

/**
 * The `queue.adaptiveLimit` option: per endpoint, the number of calls let through to the server
 * follows the measured time on the server (from sending a statement to its answer, never the
 * time spent waiting in this library's queue). Under overload the limit falls toward what the
 * server can serve, so the admitted calls keep their latency and the rest wait in the queue or
 * are refused at once with QueueFullError: once `queue.maxWaiting` wait or, with
 * `queue.maxQueueDelayMs`, once they would wait longer than that (a bound on the wait keeps the
 * admitted latency bounded as the limit moves; a count bound does not). Once the server keeps
 * up again, the limit grows back toward the pool's size (by default 2 permits a second). Only
 * statements are measured; checked-out clients and transactions hold permits but give no samples.
 * The baseline is learnt from the traffic itself: a pool that starts overloaded takes the
 * overloaded time for normal (Vegas's fastest-window baseline suffers less from this).
 *
 * `true` takes every default (Gradient2).
 * @default false
 *
 * @example
 * // Shed load rather than queue it: a bounded wait, and the limit finds the server's capacity.
 * new ResilientPool({ primary, queue: { maxQueueDelayMs: 20, adaptiveLimit: { minLimit: 2 } } });
 */
export type AdaptiveLimitOption = boolean | Gradient2LimitOptions | VegasLimitOptions;
