import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CircuitBreaker } from '../../../src/breaker/circuit-breaker.js';
import { createCacheBreaker } from '../../../src/cache/cache-breaker.js';
import { StoreGuard, UNAVAILABLE } from '../../../src/cache/guarded-store.js';
import { newCounters } from '../../../src/cache/stats.js';
import type { BreakerState } from '../../../src/telemetry/events.js';
import { createLogger } from '../../../src/telemetry/logger.js';

const settings = {
  consecutiveFailures: 0,
  errorThresholdPercentage: 50,
  volumeThreshold: 4,
  resetTimeout: 1_000,
};

const STORE_TIMEOUT = 50;

function setup(overrides: Partial<typeof settings> = {}) {
  const changes: Array<[BreakerState, BreakerState]> = [];
  const breaker = createCacheBreaker({ ...settings, ...overrides }, (s, p) => changes.push([s, p]));
  const counters = newCounters();
  const guard = new StoreGuard(breaker, STORE_TIMEOUT, counters, createLogger(false));
  return { breaker, guard, counters, changes };
}

/** A store call that answers, one that fails, one that never answers. */
const ok = () => Promise.resolve('value');
const fail = () => Promise.reject(new Error('ECONNREFUSED'));
const hang = () => new Promise<string>(() => {});

async function times(n: number, guard: StoreGuard, op: () => Promise<string>): Promise<void> {
  for (let i = 0; i < n; i++) await guard.call('GET', op);
}

/** Opens the breaker with one failure (consecutiveFailures: 1) and waits for half-open. */
async function toHalfOpen(breaker: CircuitBreaker, guard: StoreGuard): Promise<void> {
  await guard.call('GET', fail);
  expect(breaker.state).toBe('open');
  await vi.advanceTimersByTimeAsync(settings.resetTimeout);
  expect(breaker.state).toBe('half-open');
}

describe('the cache breaker', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('opens past the failure percentage once the volume is reached', async () => {
    const { breaker, guard, changes } = setup();
    await times(2, guard, ok);
    await times(2, guard, fail);
    expect(breaker.state).toBe('closed'); // 2 of 4 = 50 %, not above
    await guard.call('GET', fail);
    expect(breaker.state).toBe('open');
    const op = vi.fn(ok);
    await expect(guard.call('GET', op)).resolves.toBe(UNAVAILABLE);
    expect(op).not.toHaveBeenCalled();
    expect(changes).toEqual([['open', 'closed']]);
    breaker.shutdown();
  });

  it('opens on a streak of consecutive failures', async () => {
    const { breaker, guard } = setup({ consecutiveFailures: 3, volumeThreshold: 1_000 });
    await times(50, guard, ok);
    await times(3, guard, fail);
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('counts timeouts as failures', async () => {
    const { breaker, guard, counters } = setup({ consecutiveFailures: 2 });
    const first = guard.call('GET', hang);
    const second = guard.call('GET', hang);
    await vi.advanceTimersByTimeAsync(STORE_TIMEOUT);
    await expect(first).resolves.toBe(UNAVAILABLE);
    await expect(second).resolves.toBe(UNAVAILABLE);
    expect(counters).toMatchObject({ errors: 2, timeouts: 2 });
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('lets exactly one probe through when half-open', async () => {
    const { breaker, guard, changes } = setup({ consecutiveFailures: 1 });
    await toHalfOpen(breaker, guard);
    expect(breaker.admits).toBe(true);
    let answer: (v: string) => void = () => {};
    const probeOp = vi.fn(() => new Promise<string>((resolve) => (answer = resolve)));
    const probe = guard.call('GET', probeOp);
    expect(probeOp).toHaveBeenCalledTimes(1);
    expect(breaker.admits).toBe(false);
    const other = vi.fn(ok);
    await expect(guard.call('GET', other)).resolves.toBe(UNAVAILABLE);
    expect(other).not.toHaveBeenCalled();
    answer('fresh');
    await expect(probe).resolves.toBe('fresh');
    expect(breaker.state).toBe('closed');
    await expect(guard.call('GET', ok)).resolves.toBe('value');
    expect(changes.map(([s]) => s)).toEqual(['open', 'half-open', 'closed']);
    breaker.shutdown();
  });

  it('a probe that fails or times out re-opens it, and counts as a store failure', async () => {
    const { breaker, guard, counters, changes } = setup({ consecutiveFailures: 1 });
    await toHalfOpen(breaker, guard);
    await expect(guard.call('GET', fail)).resolves.toBe(UNAVAILABLE);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(settings.resetTimeout);
    const probe = guard.call('GET', hang);
    await vi.advanceTimersByTimeAsync(STORE_TIMEOUT);
    await expect(probe).resolves.toBe(UNAVAILABLE);
    expect(breaker.state).toBe('open');
    expect(counters).toMatchObject({ errors: 3, timeouts: 1 });
    expect(changes.map(([s]) => s)).toEqual(['open', 'half-open', 'open', 'half-open', 'open']);
    breaker.shutdown();
  });

  it('a probe whose store call throws synchronously re-opens it', async () => {
    const { breaker, guard } = setup({ consecutiveFailures: 1 });
    await toHalfOpen(breaker, guard);
    const throws = () => {
      throw new Error('not connected');
    };
    await expect(guard.call('GET', throws)).resolves.toBe(UNAVAILABLE);
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('ignores late outcomes of calls let through before it opened', async () => {
    const { breaker, guard } = setup({ consecutiveFailures: 1 });
    let answer: (v: string) => void = () => {};
    const early = guard.call('GET', () => new Promise<string>((resolve) => (answer = resolve)));
    await guard.call('GET', fail);
    answer('late');
    await expect(early).resolves.toBe('late');
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('stops its timers on close', async () => {
    const { breaker, guard, changes } = setup({ consecutiveFailures: 1 });
    await guard.call('GET', fail);
    breaker.shutdown();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(changes).toEqual([['open', 'closed']]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
