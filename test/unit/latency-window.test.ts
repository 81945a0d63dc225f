import { describe, expect, it } from 'vitest';
import { EMPTY_LATENCY, LatencyWindow } from '../../src/telemetry/latency-window.js';

/** The documented bound: at most 1/16 above the true value, or 1 µs for sub-16 µs durations. */
const RELATIVE_ERROR = 1 / 16;
const ONE_US = 0.001;
/** Float slack for ms <-> µs conversions, far below any bucket width. */
const EPSILON = 1e-9;

/** Deterministic PRNG (mulberry32) so that a failing seed can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Nearest-rank quantile of a sorted array: the definition the window approximates. */
function exactQuantile(sorted: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

function expectWithinBound(reported: number | null, exact: number, max: number): void {
  expect(reported).not.toBeNull();
  const upper = Math.max(exact * (1 + RELATIVE_ERROR), exact + ONE_US);
  expect(reported!).toBeGreaterThanOrEqual(exact - EPSILON);
  expect(reported!).toBeLessThanOrEqual(upper + EPSILON);
  expect(reported!).toBeLessThanOrEqual(max);
}

function recordAll(window: LatencyWindow, values: readonly number[]): void {
  for (const v of values) window.record(v);
}

const round = (ms: number) => Math.round(ms * 100) / 100;

describe('LatencyWindow', () => {
  it('reports nulls and a zero count when nothing was recorded', () => {
    const window = new LatencyWindow();
    expect(window.summary()).toEqual({ count: 0, p50: null, p90: null, p99: null, max: null });
    expect(window.summary()).toEqual(EMPTY_LATENCY);
    expect(window.quantile(0.5)).toBeNull();
  });

  it('returns a fresh summary object, never the shared empty constant', () => {
    const summary = new LatencyWindow().summary();
    expect(summary).not.toBe(EMPTY_LATENCY);
    expect(Object.isFrozen(EMPTY_LATENCY)).toBe(true);
  });

  it('reports one sample exactly: every percentile is clamped to the maximum', () => {
    const window = new LatencyWindow();
    window.record(12.3456);
    expect(window.summary()).toEqual({ count: 1, p50: 12.35, p90: 12.35, p99: 12.35, max: 12.35 });
    expect(window.quantile(0)).toBe(12.3456);
    expect(window.quantile(1)).toBe(12.3456);
  });

  it('reports all-equal samples exactly', () => {
    const window = new LatencyWindow();
    for (let i = 0; i < 1_000; i++) window.record(7.5);
    expect(window.summary()).toEqual({ count: 1_000, p50: 7.5, p90: 7.5, p99: 7.5, max: 7.5 });
  });

  it('places the percentiles of a uniform distribution within the bound', () => {
    const window = new LatencyWindow();
    // 1 µs .. 10 ms in 1 µs steps: the exact nearest-rank p-th percentile is p% of 10 ms.
    for (let us = 1; us <= 10_000; us++) window.record(us / 1000);
    const summary = window.summary();
    expect(summary.count).toBe(10_000);
    expect(summary.max).toBe(10);
    expect(summary.p50!).toBeGreaterThanOrEqual(5);
    expect(summary.p50!).toBeLessThanOrEqual(5 * (1 + RELATIVE_ERROR));
    expect(summary.p90!).toBeGreaterThanOrEqual(9);
    expect(summary.p90!).toBeLessThanOrEqual(9 * (1 + RELATIVE_ERROR));
    expect(summary.p99!).toBeGreaterThanOrEqual(9.9);
    expect(summary.p99!).toBeLessThanOrEqual(10);
  });

  it('separates the modes of a bimodal distribution', () => {
    const window = new LatencyWindow();
    for (let i = 0; i < 900; i++) window.record(1);
    for (let i = 0; i < 100; i++) window.record(100);
    const summary = window.summary();
    // Rank 900 of 1000 is still the fast mode; rank 990 is the slow one (clamped to its max).
    expect(summary.p50!).toBeGreaterThanOrEqual(1);
    expect(summary.p50!).toBeLessThanOrEqual(1 + RELATIVE_ERROR);
    expect(summary.p90).toBe(summary.p50);
    expect(summary.p99).toBe(100);
    expect(summary.max).toBe(100);
  });

  it('stays within the error bound of exact quantiles over random data, for many seeds', () => {
    const quantiles = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed);
      const n = 1 + Math.floor(next() * 5_000);
      // Log-uniform from 1 µs to 100 s, so every octave of the range gets exercised; every
      // fourth seed instead draws a narrow, tail-heavy (exponential) distribution around 3 ms.
      const draw =
        seed % 4 === 0
          ? () => -3 * Math.log(1 - next())
          : () => 10 ** (-3 + next() * 8) * (next() < 0.01 ? 0 : 1);
      const values = Array.from({ length: n }, draw);
      const window = new LatencyWindow();
      recordAll(window, values);
      const sorted = [...values].sort((a, b) => a - b);
      const max = sorted[sorted.length - 1]!;
      for (const q of quantiles) {
        const exact = exactQuantile(sorted, q);
        const reported = window.quantile(q);
        try {
          expectWithinBound(reported, exact, max);
        } catch (error) {
          throw new Error(`seed ${seed}, n ${n}, q ${q}: exact ${exact}, reported ${reported}`, {
            cause: error,
          });
        }
      }
      const summary = window.summary();
      expect(summary.count).toBe(n);
      expect(summary.max).toBe(round(max));
      expect(summary.p50).toBe(round(window.quantile(0.5)!));
      expect(summary.p90).toBe(round(window.quantile(0.9)!));
      expect(summary.p99).toBe(round(window.quantile(0.99)!));
    }
  });

  it('keeps the bound at every bucket edge, from 1 µs to the top of the range', () => {
    // Each duration is recorded beside a far larger one so the clamp to max cannot hide the
    // bucket's own upper bound; quantile(0) is then the bucket holding the duration.
    for (let exponent = 0; exponent < 30; exponent++) {
      for (const delta of [-1, 0, 1]) {
        const us = 2 ** exponent + delta;
        if (us < 1) continue;
        const ms = us / 1000;
        const window = new LatencyWindow();
        window.record(ms);
        window.record(2_000_000);
        expectWithinBound(window.quantile(0), ms, 2_000_000);
      }
    }
  });

  it('drops data exactly after `slots` rotations', () => {
    const window = new LatencyWindow(3);
    window.record(50);
    window.rotate();
    window.record(5);
    window.rotate();
    expect(window.summary()).toMatchObject({ count: 2, max: 50 });
    window.rotate(); // the third rotation reuses the slot that held 50
    expect(window.summary()).toMatchObject({ count: 1, max: 5, p99: 5 });
    window.rotate();
    expect(window.summary()).toEqual(EMPTY_LATENCY);
    window.record(2);
    expect(window.summary()).toMatchObject({ count: 1, max: 2 });
  });

  it('slides the window one slot per rotation over many cycles', () => {
    const slots = 4;
    const window = new LatencyWindow(slots);
    const perSlot: number[] = [];
    for (let step = 0; step < 20; step++) {
      // Slot `step` gets step + 1 samples of (step + 1) ms; the live slots are the last `slots`.
      for (let i = 0; i <= step; i++) window.record(step + 1);
      perSlot.push(step + 1);
      const live = perSlot.slice(-slots);
      const summary = window.summary();
      expect(summary.count).toBe(live.reduce((a, b) => a + b, 0));
      expect(summary.max).toBe(step + 1);
      expect(window.quantile(0)!).toBeGreaterThanOrEqual(live[0]!);
      expect(window.quantile(0)!).toBeLessThanOrEqual(live[0]! * (1 + RELATIVE_ERROR));
      window.rotate();
    }
  });

  it('with one slot, every rotation starts from nothing', () => {
    const window = new LatencyWindow(1);
    window.record(3);
    window.rotate();
    expect(window.summary()).toEqual(EMPTY_LATENCY);
  });

  it('ignores negative, NaN and infinite durations', () => {
    const window = new LatencyWindow();
    for (const bad of [
      -1,
      -0.001,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]) {
      window.record(bad);
    }
    expect(window.summary()).toEqual(EMPTY_LATENCY);
    window.record(4);
    window.record(Number.NaN);
    expect(window.summary()).toMatchObject({ count: 1, max: 4 });
  });

  it('records zero and sub-microsecond durations without inventing latency', () => {
    const window = new LatencyWindow();
    window.record(0);
    expect(window.summary()).toEqual({ count: 1, p50: 0, p90: 0, p99: 0, max: 0 });
    window.record(0.0004);
    expect(window.quantile(1)).toBe(0.0004);
    expect(window.quantile(0)!).toBeLessThanOrEqual(ONE_US);
  });

  it('counts durations beyond the range in the top bucket and reports them as the exact max', () => {
    const window = new LatencyWindow();
    for (let i = 0; i < 99; i++) window.record(1);
    window.record(3_600_000); // one hour, past the ~17.9 min top of the range
    expect(window.summary()).toMatchObject({ count: 100, max: 3_600_000 });
    expect(window.summary().p99!).toBeLessThanOrEqual(1 + RELATIVE_ERROR);
    expect(window.quantile(1)).toBe(3_600_000);
    window.record(1e12);
    expect(window.quantile(0.995)).toBe(1e12);
  });

  it('keeps the maximum exact, unrounded, for quantile(1)', () => {
    const next = random(42);
    const window = new LatencyWindow();
    let max = 0;
    for (let i = 0; i < 10_000; i++) {
      const v = next() * 250;
      max = Math.max(max, v);
      window.record(v);
    }
    expect(window.quantile(1)).toBe(max);
    expect(window.summary().max).toBe(round(max));
  });

  it('rejects a window of no slots and a quantile outside 0..1', () => {
    for (const slots of [0, -1, 1.5, Number.NaN]) {
      expect(() => new LatencyWindow(slots)).toThrow(RangeError);
    }
    const window = new LatencyWindow();
    for (const q of [-0.1, 1.1, Number.NaN]) {
      expect(() => window.quantile(q)).toThrow(/`q`/);
    }
  });
});
