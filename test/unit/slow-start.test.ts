/**
 * Slow start's ramps: a target coming back from an outage starts at the floor and reaches its
 * full share linearly over the window; one that never left is never touched.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SlowStart } from '../../src/routing/slow-start.js';

interface Target {
  name: string;
  share: number;
  out: boolean;
}

const WINDOW = 5_000;

function setup(names = ['a', 'b']) {
  const targets: Target[] = names.map((name) => ({ name, share: 1, out: false }));
  const ramps = new SlowStart(targets, { windowMs: WINDOW, minShare: 0.1 });
  const update = () => ramps.update(Date.now(), (t) => t.out);
  const at = (name: string) => targets.find((t) => t.name === name)!;
  return { targets, ramps, update, at };
}

describe('slow start', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('leaves a target that never left alone at share 1', () => {
    const { update, at, ramps } = setup();
    for (let i = 0; i < 10; i++) {
      update();
      vi.advanceTimersByTime(1_000);
    }
    expect(at('a').share).toBe(1);
    expect(ramps.isRamping(at('a') as never)).toBe(false);
  });

  it('ramps a target back from an outage from the floor to 1, linearly, over the window', () => {
    const { update, at, ramps } = setup();
    at('a').out = true;
    update();
    expect(at('a').share).toBe(1); // out: not routed, and never handicapped in panic routing
    vi.advanceTimersByTime(3_000);
    at('a').out = false;
    update();
    expect(at('a').share).toBeCloseTo(0.1);
    expect(ramps.isRamping(at('a') as never)).toBe(true);
    const seen: number[] = [];
    for (let ms = 1_000; ms <= WINDOW; ms += 1_000) {
      vi.advanceTimersByTime(1_000);
      update();
      seen.push(at('a').share);
    }
    expect(seen.slice(0, 4).map((s) => Math.round(s * 100) / 100)).toEqual([
      0.28, 0.46, 0.64, 0.82,
    ]);
    expect(seen[4]).toBe(1);
    expect(ramps.isRamping(at('a') as never)).toBe(false);
    // The other target was never touched.
    expect(at('b').share).toBe(1);
  });

  it('reaches exactly 1 at the end of the window, not a step before', () => {
    const { update, at } = setup(['a']);
    at('a').out = true;
    update();
    at('a').out = false;
    update();
    vi.advanceTimersByTime(WINDOW - 1);
    update();
    expect(at('a').share).toBeLessThan(1);
    vi.advanceTimersByTime(1);
    update();
    expect(at('a').share).toBe(1);
  });

  it('restarts from the floor when the target goes out again mid-ramp', () => {
    const { update, at } = setup(['a']);
    at('a').out = true;
    update();
    at('a').out = false;
    update();
    vi.advanceTimersByTime(4_000);
    update();
    expect(at('a').share).toBeGreaterThan(0.7);
    at('a').out = true;
    update();
    expect(at('a').share).toBe(1);
    vi.advanceTimersByTime(10_000);
    at('a').out = false;
    update();
    expect(at('a').share).toBeCloseTo(0.1);
  });

  it('neither shortens nor undoes a ramp when the clock steps back', () => {
    const { ramps, targets } = setup(['a']);
    const a = targets[0]!;
    a.out = true;
    ramps.update(10_000, (t) => t.out);
    a.out = false;
    ramps.update(10_000, (t) => t.out);
    ramps.update(12_500, (t) => t.out);
    expect(a.share).toBeCloseTo(0.55);
    ramps.update(9_000, (t) => t.out);
    expect(a.share).toBeCloseTo(0.1);
    expect(a.share).toBeGreaterThan(0);
  });

  it('keeps every share within [floor, 1] whatever the sequence of outages and steps', () => {
    const { ramps, targets } = setup(['a', 'b', 'c']);
    let seed = 7;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    let now = 0;
    const wrong: string[] = [];
    for (let i = 0; i < 5_000; i++) {
      for (const t of targets) if (next() < 0.05) t.out = !t.out;
      now += Math.floor(next() * 700);
      ramps.update(now, (t) => t.out);
      for (const t of targets) {
        if (!(t.share >= 0.1 && t.share <= 1) || (t.out && t.share !== 1)) {
          wrong.push(`${i}: ${t.name} ${t.out ? 'out' : 'in'} at ${t.share}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
