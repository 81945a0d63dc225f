import { describe, expect, it } from 'vitest';
import {
  AdaptiveLimit,
  ExponentialAverage,
  Gradient2Limit,
  VegasLimit,
} from '../../src/endpoint/adaptive-limit.js';
import { Gate } from '../../src/endpoint/gate.js';
import {
  adaptiveLimitFor,
  type EndpointLimitSettings,
  type ResolvedAdaptiveLimit,
  resolveAdaptiveLimit,
} from '../../src/options/adaptive-limit.js';
import { DEFAULTS } from '../../src/options/defaults.js';

// The limiter has no timer and no clock of its own: time is what each sample carries, so these
// tests drive it with explicit times and need no fake timers.

function settings(
  input: Record<string, unknown> | true = true,
  maxConcurrent = 20,
): EndpointLimitSettings {
  const problems: string[] = [];
  const resolved = resolveAdaptiveLimit(input, problems);
  expect(problems).toEqual([]);
  return adaptiveLimitFor(resolved as ResolvedAdaptiveLimit, maxConcurrent);
}

/** A target that records every limit it is given. */
function recorder() {
  const limits: number[] = [];
  return { limits, setLimit: (n: number) => limits.push(n) };
}

/**
 * Feeds `windows` full windows of `perWindow` samples each, all of `rttMs` and `inFlight` (or
 * functions of the window and of the limit): the first sample of a window opens it, the last one
 * comes `windowMs` later and closes it.
 */
function feed(
  limiter: AdaptiveLimit,
  clock: { now: number },
  windows: number,
  rttMs: number | ((window: number) => number),
  inFlight: number | ((limit: number) => number),
  { perWindow = 10, windowMs = 100, didDrop = false } = {},
): void {
  for (let w = 0; w < windows; w++) {
    const rtt = typeof rttMs === 'function' ? rttMs(w) : rttMs;
    const flying = typeof inFlight === 'function' ? inFlight(limiter.limit) : inFlight;
    const start = clock.now;
    for (let i = 0; i < perWindow; i++) {
      clock.now = start + (i * windowMs) / (perWindow - 1);
      limiter.sample(rtt, flying, didDrop, clock.now);
    }
    clock.now += 1;
  }
}

/**
 * A server of `capacity` slots, each statement `serviceMs` alone, fed by more callers than the
 * limit (so the limit is always full): `limit` in flight take `serviceMs × limit / capacity`.
 */
const overloaded = (capacity: number, serviceMs: number) => (limit: number) =>
  serviceMs * Math.max(1, limit / capacity);

describe('AdaptiveLimit (windows)', () => {
  it('gives the gate its initial limit at once', () => {
    const target = recorder();
    new AdaptiveLimit(settings({ initialLimit: 7 }), target);
    expect(target.limits).toEqual([7]);
  });

  it('changes nothing before a window of windowMs has passed', () => {
    const target = recorder();
    const limiter = new AdaptiveLimit(settings({ initialLimit: 10, windowMs: 100 }), target);
    // 100 samples, all slow, all within 99 ms: one window still open.
    for (let i = 0; i < 100; i++) limiter.sample(i < 50 ? 10 : 1_000, 10, false, i * 0.99);
    expect(target.limits).toEqual([10]);
  });

  it('drops a window with fewer than minSamples answers (a quiet endpoint)', () => {
    const target = recorder();
    const limiter = new AdaptiveLimit(settings({ minSamples: 10 }), target);
    const clock = { now: 0 };
    // Warm the baseline, then slow windows of 9 samples each: none counts.
    feed(limiter, clock, 20, 10, 20);
    const before = limiter.limit;
    feed(limiter, clock, 50, 100, 20, { perWindow: 9 });
    expect(limiter.limit).toBe(before);
    // The tenth sample makes a window count.
    feed(limiter, clock, 1, 100, 20);
    expect(limiter.limit).toBeLessThan(before);
  });

  it('tells the gate only when the whole number changes', () => {
    const target = recorder();
    const limiter = new AdaptiveLimit(settings({ initialLimit: 5, queueSize: 1 }), target);
    const clock = { now: 0 };
    // At the baseline and saturated: +0.2 per window, so one call to the gate per 5 windows.
    feed(limiter, clock, 25, 10, (limit) => limit);
    expect(target.limits).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it('uses the most calls in flight in the window, not the last', () => {
    const limiter = new AdaptiveLimit(settings({ initialLimit: 10 }), recorder());
    const clock = { now: 0 };
    feed(limiter, clock, 10, 10, 10);
    const before = limiter.limit;
    // One sample at 10 in flight, the rest at 1: the window was saturated.
    for (let i = 0; i < 10; i++) {
      clock.now += 10;
      limiter.sample(10, i === 3 ? 10 : 1, false, clock.now);
    }
    expect(limiter.limit).toBeGreaterThanOrEqual(before);
    expect(limiter.snapshot().rttMs).toBe(10);
  });

  it('reports its state for stats()', () => {
    const limiter = new AdaptiveLimit(settings({ initialLimit: 8 }), recorder());
    expect(limiter.snapshot()).toEqual({
      limit: 8,
      algorithm: 'gradient2',
      rttMs: null,
      baselineMs: null,
    });
    feed(limiter, { now: 0 }, 1, 12.345, 8);
    expect(limiter.snapshot()).toMatchObject({ rttMs: 12.35, baselineMs: 12.35 });
  });

  it('drives a real gate: the cut holds permits back, the raise lets waiters in', async () => {
    const gate = new Gate({ name: 'ep', maxConcurrent: 10, maxWaiting: 50, acquireTimeout: 1_000 });
    const limiter = new AdaptiveLimit(settings({ smoothing: 1, queueSize: 0 }, 10), gate);
    expect(gate.limit).toBe(10);
    const clock = { now: 0 };
    feed(limiter, clock, 10, 10, 10);
    // Twice as slow with a tolerance of 1.5: gradient 0.75, smoothing 1: 10 → 7.
    feed(limiter, clock, 1, 20, 10);
    expect(gate.limit).toBe(7);
    for (let i = 0; i < 7; i++) expect(gate.tryAcquire()).toBe(true);
    expect(gate.tryAcquire()).toBe(false);
  });
});

describe('Gradient2Limit', () => {
  const g2 = (input: Record<string, unknown> = {}, max = 20) =>
    new Gradient2Limit(settings(input, max) as EndpointLimitSettings & { algorithm: 'gradient2' });

  it('grows by queueSize × smoothing per saturated window at the baseline, up to maxLimit', () => {
    const limit = g2({ initialLimit: 10, queueSize: 2, smoothing: 0.5 }, 12);
    expect(limit.update(10, 10, false)).toBeCloseTo(11);
    expect(limit.update(10, 11, false)).toBeCloseTo(12);
    expect(limit.update(10, 12, false)).toBe(12);
    expect(limit.update(10, 12, false)).toBe(12);
  });

  it('tolerates a window up to `tolerance` times the baseline without a cut', () => {
    const limit = g2({ initialLimit: 10, queueSize: 0, tolerance: 1.5 });
    for (let i = 0; i < 10; i++) limit.update(10, 10, false);
    // 1.4 times slower: the gradient stays 1 (a warmed baseline barely moves in one window).
    expect(limit.update(14, 10, false)).toBeCloseTo(10, 5);
  });

  it('cuts at most smoothing × half the limit per window, however slow the window', () => {
    const limit = g2({ initialLimit: 20, queueSize: 0, smoothing: 0.2 });
    for (let i = 0; i < 10; i++) limit.update(10, 20, false);
    // A thousand times slower: the gradient is floored at 0.5.
    expect(limit.update(10_000, 20, false)).toBeCloseTo(20 * 0.8 + 20 * 0.5 * 0.2);
  });

  it('never goes below minLimit', () => {
    const limit = g2({ initialLimit: 10, minLimit: 4, queueSize: 0, smoothing: 1 });
    for (let i = 0; i < 10; i++) limit.update(10, 10, false);
    let value = 10;
    for (let i = 0; i < 20; i++) value = limit.update(10_000, 20, false);
    expect(value).toBe(4);
  });

  it('a window with fewer than half the limit in flight never cuts it, but may grow it', () => {
    const limit = g2({ initialLimit: 10, queueSize: 1, smoothing: 0.2 });
    for (let i = 0; i < 10; i++) limit.update(10, 10, false);
    const before = limit.update(10, 10, false);
    const paced = Math.floor(before / 2 - 0.01);
    // Slow, but paced by the callers: the window says nothing about the server's capacity.
    expect(limit.update(1_000, paced, false)).toBe(before);
    // Within tolerance: grows as a saturated window would (Netflix's would hold it).
    expect(limit.update(10, paced, false)).toBeCloseTo(before + 0.2);
    // Half or more is not paced by the callers: the slow window cuts.
    expect(limit.update(1_000, Math.ceil(before / 2), false)).toBeLessThan(before);
  });

  it('ignores drops (as Netflix does): only the time counts', () => {
    const a = g2({ initialLimit: 10 });
    const b = g2({ initialLimit: 10 });
    for (let i = 0; i < 20; i++) expect(a.update(10, 10, true)).toBe(b.update(10, 10, false));
  });

  it('pulls an inflated baseline down once latency is back to normal', () => {
    const limit = g2({ initialLimit: 10, longWindow: 50 });
    for (let i = 0; i < 10; i++) limit.update(10, 10, false);
    for (let i = 0; i < 500; i++) limit.update(100, 10, false);
    expect(limit.baselineMs).toBeGreaterThan(80);
    // Ten normal windows: the average alone would still be far above twice 10 ms.
    for (let i = 0; i < 60; i++) limit.update(10, 10, false);
    expect(limit.baselineMs).toBeLessThan(20);
  });

  it('settles near capacity × tolerance + queueSize under twice the load, then recovers', () => {
    const target = recorder();
    const limiter = new AdaptiveLimit(settings({}, 16), target);
    const clock = { now: 0 };
    // Unloaded: 2 callers, a server of 4 slots, 10 ms: the baseline learns 10 ms; no change.
    feed(limiter, clock, 30, 10, 2);
    expect(limiter.limit).toBe(16);
    // Overload: more callers than the limit, always; time on the server grows with the limit.
    const server = overloaded(4, 10);
    let lowest = 16;
    for (let w = 0; w < 200; w++) {
      feed(limiter, clock, 1, server(limiter.limit), limiter.limit);
      lowest = Math.min(lowest, limiter.limit);
    }
    // 4 × 1.5 + 1 = 7: the admitted calls take at most ~1.75 times the unloaded time.
    expect(limiter.limit).toBeGreaterThanOrEqual(4);
    expect(limiter.limit).toBeLessThanOrEqual(8);
    expect(server(limiter.limit)).toBeLessThanOrEqual(20);
    expect(lowest).toBeGreaterThanOrEqual(4);
    // Back to a load the server keeps up with (2 callers): the limit grows back to the pool's
    // size, by queueSize × smoothing per window.
    const low = limiter.limit;
    feed(limiter, clock, 10, 10, 2);
    expect(limiter.limit).toBe(low + 2);
    feed(limiter, clock, 100, 10, 2);
    expect(limiter.limit).toBe(16);
    expect(target.limits.every((n) => n >= 1 && n <= 16 && Number.isInteger(n))).toBe(true);
  });
});

describe('VegasLimit', () => {
  const vegas = (input: Record<string, unknown> = {}, random = () => 0.99, max = 200) =>
    new VegasLimit(
      settings({ algorithm: 'vegas', ...input }, max) as EndpointLimitSettings & {
        algorithm: 'vegas';
      },
      random,
    );

  it('takes its first window as the no-load time and changes nothing', () => {
    const limit = vegas({ initialLimit: 20 });
    expect(limit.update(10, 20, false)).toBe(20);
    expect(limit.baselineMs).toBe(10);
    // A faster window lowers the no-load time, again without a change.
    expect(limit.update(8, 20, false)).toBe(20);
    expect(limit.baselineMs).toBe(8);
  });

  it('grows by beta with no queue, by log10 with a short one, cuts by log10 with a long one', () => {
    const limit = vegas({ initialLimit: 20 });
    limit.update(10, 20, false);
    // queued = ⌈20 × (1 − 10/10)⌉ = 0 ≤ 1: + beta (6 × log10(20) = 6).
    expect(limit.update(10, 20, false)).toBe(26);
    // queued = ⌈26 × (1 − 10/11)⌉ = 3, alpha 3: not below alpha, not above beta: unchanged.
    expect(limit.update(11, 26, false)).toBe(26);
    // queued = ⌈26 × (1 − 10/10.5)⌉ = 2 < alpha: + 1.
    expect(limit.update(10.5, 26, false)).toBe(27);
    // queued = ⌈27 × (1 − 10/20)⌉ = 14 > beta: − 1.
    expect(limit.update(20, 27, false)).toBe(26);
  });

  it('a drop cuts by log10 even when paced by the callers; a queue then does not', () => {
    const limit = vegas({ initialLimit: 20 });
    limit.update(10, 20, false);
    expect(limit.update(10, 1, true)).toBe(19);
    // queued = ⌈19 × (1 − 10/20)⌉ = 10 > beta, but 1 in flight: no cut.
    expect(limit.update(20, 1, false)).toBe(19);
  });

  it('no queue grows the limit by beta even when paced by the callers', () => {
    const limit = vegas({ initialLimit: 20 });
    limit.update(10, 20, false);
    expect(limit.update(10, 1, false)).toBe(26);
  });

  it('fixed alpha and beta replace the functions', () => {
    const limit = vegas({ initialLimit: 20, alpha: 1, beta: 2 });
    limit.update(10, 20, false);
    // queued 0 ≤ log10 step (1): + beta (2).
    expect(limit.update(10, 20, false)).toBe(22);
    // queued = ⌈22 × (1 − 10/12)⌉ = 4 > beta: − 1.
    expect(limit.update(12, 22, false)).toBe(21);
  });

  it('stays within minLimit and maxLimit, smoothed', () => {
    const limit = vegas(
      { initialLimit: 10, minLimit: 9, maxLimit: 12, smoothing: 0.5 },
      () => 0.99,
    );
    limit.update(10, 10, false);
    // + beta (6) clamped to 12, then half way: 11.
    expect(limit.update(10, 10, false)).toBe(11);
    for (let i = 0; i < 20; i++) limit.update(100, 12, true);
    expect(limit.update(100, 12, true)).toBeGreaterThanOrEqual(9);
  });

  it('re-measures the no-load time after probeMultiplier × limit windows (with jitter)', () => {
    // random 0: jitter 0.5, so a probe after 0.5 × 2 × 10 = 10 windows. 15 ms against 10 puts
    // ⌈10 × (1 − 10/15)⌉ = 4 in the queue, between alpha and beta: the limit holds still.
    const limit = vegas({ initialLimit: 10, maxLimit: 10, probeMultiplier: 2 }, () => 0);
    limit.update(10, 10, false);
    for (let i = 0; i < 8; i++) expect(limit.update(15, 10, false)).toBe(10);
    expect(limit.baselineMs).toBe(10);
    limit.update(15, 10, false); // the tenth window: the probe
    expect(limit.baselineMs).toBe(15);
  });

  it('finds a bounded limit under twice the load', () => {
    const limiter = new AdaptiveLimit(settings({ algorithm: 'vegas' }, 32), recorder(), () => 0.99);
    const clock = { now: 0 };
    feed(limiter, clock, 5, 10, 2);
    const server = overloaded(8, 10);
    for (let w = 0; w < 300; w++) feed(limiter, clock, 1, server(limiter.limit), limiter.limit);
    // Vegas keeps 3 to 6 queued at the server: limit − 8 within [3, 6], give or take a step.
    expect(limiter.limit).toBeGreaterThanOrEqual(8);
    expect(limiter.limit).toBeLessThanOrEqual(16);
  });
});

describe('ExponentialAverage', () => {
  it('is the plain mean while warming up, then weighs a sample by 2 / (window + 1)', () => {
    const avg = new ExponentialAverage(9, 2);
    expect(avg.add(10)).toBe(10);
    expect(avg.add(20)).toBe(15);
    expect(avg.add(35)).toBeCloseTo(15 * 0.8 + 35 * 0.2);
  });
});

describe('queue.adaptiveLimit options', () => {
  const resolve = (input: unknown) => {
    const problems: string[] = [];
    return { value: resolveAdaptiveLimit(input, problems), problems };
  };

  it('is off when absent or false, Gradient2 with every default when true', () => {
    expect(resolve(undefined)).toEqual({ value: false, problems: [] });
    expect(resolve(false)).toEqual({ value: false, problems: [] });
    expect(DEFAULTS.queue.adaptiveLimit).toBe(false);
    expect(resolve(true)).toEqual({
      value: {
        algorithm: 'gradient2',
        minLimit: 1,
        maxLimit: undefined,
        initialLimit: undefined,
        windowMs: 100,
        minSamples: 10,
        tolerance: 1.5,
        smoothing: 0.2,
        longWindow: 6_000,
        queueSize: 1,
      },
      problems: [],
    });
    expect(resolve({}).value).toEqual(resolve(true).value);
  });

  it('fills Vegas defaults, leaving alpha and beta to the functions of the limit', () => {
    expect(resolve({ algorithm: 'vegas', minLimit: 2 }).value).toEqual({
      algorithm: 'vegas',
      minLimit: 2,
      maxLimit: undefined,
      initialLimit: undefined,
      windowMs: 100,
      minSamples: 10,
      alpha: undefined,
      beta: undefined,
      smoothing: 1,
      probeMultiplier: 30,
    });
  });

  it('lists every problem at once, naming each option', () => {
    const { value, problems } = resolve({
      algorithm: 'aimd',
      minLimit: 0,
      maxLimit: 2.5,
      windowMs: -1,
      smoothing: 2,
      tolerance: 0.9,
      limit: 3,
    });
    expect(value).toBe(false);
    expect(problems).toEqual([
      "queue.adaptiveLimit.algorithm: must be one of 'gradient2', 'vegas', got 'aimd'",
      'queue.adaptiveLimit.minLimit: must be an integer from 1 to 100000, got 0',
      'queue.adaptiveLimit.maxLimit: must be an integer from 1 to 100000, got 2.5',
      'queue.adaptiveLimit.windowMs: must be an integer from 1 to 2147483647, got -1',
      'queue.adaptiveLimit.smoothing: must be a finite number from 0 to 1, got 2',
      'queue.adaptiveLimit.tolerance: must be a finite number from 1 to 100, got 0.9',
      expect.stringMatching(/^queue\.adaptiveLimit\.limit: unknown option \(known: algorithm, /),
    ]);
  });

  it("refuses the other algorithm's knobs as unknown", () => {
    expect(resolve({ algorithm: 'vegas', tolerance: 2 }).problems).toEqual([
      expect.stringMatching(/^queue\.adaptiveLimit\.tolerance: unknown option .*alpha, beta/),
    ]);
    expect(resolve({ alpha: 2 }).problems).toEqual([
      expect.stringMatching(/^queue\.adaptiveLimit\.alpha: unknown option .*tolerance/),
    ]);
  });

  it('checks bounds against each other', () => {
    expect(resolve({ minLimit: 5, maxLimit: 4 }).problems).toEqual([
      'queue.adaptiveLimit.minLimit (5) must not exceed queue.adaptiveLimit.maxLimit (4)',
    ]);
    expect(resolve({ minLimit: 5, initialLimit: 4 }).problems).toEqual([
      'queue.adaptiveLimit.initialLimit (4) must not be below queue.adaptiveLimit.minLimit (5)',
    ]);
    expect(resolve({ maxLimit: 5, initialLimit: 6 }).problems).toEqual([
      'queue.adaptiveLimit.initialLimit (6) must not exceed queue.adaptiveLimit.maxLimit (5)',
    ]);
    expect(resolve({ algorithm: 'vegas', alpha: 4, beta: 4 }).problems).toEqual([
      'queue.adaptiveLimit.alpha (4) must be below queue.adaptiveLimit.beta (4)',
    ]);
  });

  it('refuses what is neither a boolean nor an object', () => {
    for (const bad of ['gradient2', 3, null, []]) {
      expect(resolve(bad).problems).toEqual([
        expect.stringMatching(/^queue\.adaptiveLimit: must be true, false or an object, got /),
      ]);
    }
  });

  it('fits the bounds to the endpoint: never above its pool size', () => {
    const base = resolve(true).value as ResolvedAdaptiveLimit;
    expect(adaptiveLimitFor(base, 10)).toMatchObject({
      minLimit: 1,
      maxLimit: 10,
      initialLimit: 10,
    });
    const given = resolve({ minLimit: 4, maxLimit: 50, initialLimit: 30 })
      .value as ResolvedAdaptiveLimit;
    expect(adaptiveLimitFor(given, 10)).toMatchObject({
      minLimit: 4,
      maxLimit: 10,
      initialLimit: 10,
    });
    // A pool smaller than minLimit: everything is the pool's size.
    expect(adaptiveLimitFor(given, 2)).toMatchObject({ minLimit: 2, maxLimit: 2, initialLimit: 2 });
    const low = resolve({ initialLimit: 3 }).value as ResolvedAdaptiveLimit;
    expect(adaptiveLimitFor(low, 10)).toMatchObject({ maxLimit: 10, initialLimit: 3 });
  });
});
