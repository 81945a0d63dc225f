import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ADMITTED, CacheBreaker, DENIED, PROBE } from '../../../src/cache/cache-breaker.js';
import type { BreakerState } from '../../../src/telemetry/events.js';

const settings = {
  consecutiveFailures: 0,
  errorThresholdPercentage: 50,
  volumeThreshold: 4,
  resetTimeout: 1_000,
};

function setup(overrides: Partial<typeof settings> = {}) {
  const changes: Array<[BreakerState, BreakerState]> = [];
  const breaker = new CacheBreaker({ ...settings, ...overrides }, (s, p) => changes.push([s, p]));
  return { breaker, changes };
}

describe('CacheBreaker', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('opens past the failure percentage once the volume is reached', () => {
    const { breaker, changes } = setup();
    for (let i = 0; i < 2; i++) breaker.success(breaker.admit());
    for (let i = 0; i < 2; i++) breaker.failure(breaker.admit());
    expect(breaker.state).toBe('closed'); // 2 of 4 = 50 %, not above
    breaker.failure(breaker.admit());
    expect(breaker.state).toBe('open');
    expect(breaker.admit()).toBe(DENIED);
    expect(changes).toEqual([['open', 'closed']]);
    breaker.close();
  });

  it('opens on a streak of consecutive failures', () => {
    const { breaker } = setup({ consecutiveFailures: 3, volumeThreshold: 1_000 });
    for (let i = 0; i < 50; i++) breaker.success(breaker.admit());
    for (let i = 0; i < 3; i++) breaker.failure(breaker.admit());
    expect(breaker.state).toBe('open');
    breaker.close();
  });

  it('lets exactly one probe through when half-open', async () => {
    const { breaker, changes } = setup({ consecutiveFailures: 1 });
    breaker.failure(breaker.admit());
    await vi.advanceTimersByTimeAsync(1_000);
    expect(breaker.state).toBe('half-open');
    expect(breaker.admits).toBe(true);
    const probe = breaker.admit();
    expect(probe).toBe(PROBE);
    expect(breaker.admits).toBe(false);
    expect(breaker.admit()).toBe(DENIED);
    breaker.success(probe);
    expect(breaker.state).toBe('closed');
    expect(breaker.admit()).toBe(ADMITTED);
    expect(changes.map(([s]) => s)).toEqual(['open', 'half-open', 'closed']);
    breaker.close();
  });

  it('ignores late outcomes of calls let through before it opened', () => {
    const { breaker } = setup({ consecutiveFailures: 1 });
    const early = breaker.admit();
    breaker.failure(breaker.admit());
    breaker.success(early);
    expect(breaker.state).toBe('open');
    breaker.close();
  });

  it('stops its timers on close', async () => {
    const { breaker, changes } = setup({ consecutiveFailures: 1 });
    breaker.failure(breaker.admit());
    breaker.close();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(changes).toEqual([['open', 'closed']]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
