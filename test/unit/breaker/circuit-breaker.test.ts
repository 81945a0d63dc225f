import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker } from '../../../src/breaker/circuit-breaker.js';
import type { CircuitBreakerSettings, FailurePolicy } from '../../../src/breaker/types.js';
import { CircuitOpenError } from '../../../src/errors.js';
import type { BreakerState } from '../../../src/telemetry/events.js';

const settings: CircuitBreakerSettings = {
  enabled: true,
  errorThresholdPercentage: 50,
  volumeThreshold: 4,
  consecutiveFailures: 0,
  resetTimeout: 1_000,
  rollingCountTimeout: 10_000,
  rollingCountBuckets: 10,
};

function setup(overrides: Partial<CircuitBreakerSettings> = {}, policy?: FailurePolicy) {
  const changes: Array<[BreakerState, BreakerState]> = [];
  const breaker = new CircuitBreaker(
    'dep',
    { ...settings, ...overrides },
    (s, p) => changes.push([s, p]),
    policy,
  );
  return { breaker, changes };
}

/** Opens the circuit with one failure, then waits for half-open. */
async function toHalfOpen(breaker: CircuitBreaker): Promise<void> {
  breaker.countFailure();
  expect(breaker.state).toBe('open');
  await vi.advanceTimersByTimeAsync(settings.resetTimeout);
  expect(breaker.state).toBe('half-open');
}

describe('CircuitBreaker: opening', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('counts every failure by default, and opens past the percentage once volume is reached', () => {
    const { breaker, changes } = setup();
    breaker.recordSuccess();
    breaker.recordSuccess();
    breaker.recordFailure(new Error('a'));
    breaker.recordFailure(undefined);
    expect(breaker.state).toBe('closed'); // 2 of 4 = 50 %, not above
    breaker.recordFailure('anything');
    expect(breaker.state).toBe('open');
    expect(breaker.admits).toBe(false);
    expect(breaker.isClosed).toBe(false);
    expect(changes).toEqual([['open', 'closed']]);
    breaker.shutdown();
  });

  it('opens on a streak of consecutive failures whatever the percentage', () => {
    const { breaker } = setup({ consecutiveFailures: 3, volumeThreshold: 1_000 });
    for (let i = 0; i < 50; i++) breaker.recordSuccess();
    breaker.countFailure();
    breaker.countFailure();
    breaker.recordSuccess(); // the dependency answered: the streak starts again
    breaker.countFailure();
    breaker.countFailure();
    expect(breaker.state).toBe('closed');
    breaker.countFailure();
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('forgets failures that slid out of the rolling window', async () => {
    const { breaker } = setup();
    for (let i = 0; i < 3; i++) breaker.countFailure();
    await vi.advanceTimersByTimeAsync(10_000);
    breaker.countFailure();
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });

  it('asks the policy which failures count; countFailure() is the owner judging itself', () => {
    const counts = vi.fn((err: unknown) => err === 'health');
    const { breaker } = setup({ volumeThreshold: 1 }, { counts, answered: () => false });
    breaker.recordFailure('sql error');
    expect(breaker.state).toBe('closed');
    expect(counts).toHaveBeenCalledWith('sql error');
    breaker.countFailure();
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('ignores failures reported while not closed (late outcomes of earlier calls)', async () => {
    const counts = vi.fn(() => true);
    const { breaker, changes } = setup({ volumeThreshold: 1 }, { counts, answered: () => false });
    breaker.countFailure();
    breaker.recordFailure(new Error('late'));
    breaker.recordSuccess();
    expect(counts).not.toHaveBeenCalled();
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    breaker.recordFailure(new Error('late'));
    expect(breaker.state).toBe('half-open');
    expect(changes.map(([s]) => s)).toEqual(['open', 'half-open']);
    breaker.shutdown();
  });

  it('enabled: false never opens and admits every call', () => {
    const { breaker, changes } = setup({
      enabled: false,
      volumeThreshold: 1,
      consecutiveFailures: 1,
    });
    for (let i = 0; i < 5; i++) breaker.recordFailure(new Error('x'));
    breaker.countFailure();
    breaker.holdOpen();
    expect(breaker.state).toBe('closed');
    expect(breaker.isClosed).toBe(true);
    expect(changes).toEqual([]);
    breaker.releaseHold();
    expect(breaker.admits).toBe(true);
    breaker.shutdown();
  });

  it('the closed path starts no timer and no opossum call', () => {
    const { breaker } = setup({ volumeThreshold: 1_000 });
    const timers = vi.getTimerCount();
    const fire = vi.spyOn(
      (breaker as unknown as { circuit: { fire: () => unknown } }).circuit,
      'fire',
    );
    for (let i = 0; i < 100; i++) {
      breaker.recordSuccess();
      breaker.recordFailure(new Error('x'));
    }
    expect(vi.getTimerCount()).toBe(timers);
    expect(fire).not.toHaveBeenCalled();
    breaker.shutdown();
  });
});

describe('CircuitBreaker: half-open probe', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('half-opens after resetTimeout, lets exactly one probe through, closes on its success', async () => {
    const { breaker, changes } = setup({ volumeThreshold: 1 });
    await toHalfOpen(breaker);
    expect(breaker.admits).toBe(true);
    let finish: (v: string) => void = () => {};
    const work = vi.fn(() => new Promise<string>((resolve) => (finish = resolve)));
    const probe = breaker.probe(work);
    expect(work).toHaveBeenCalledTimes(1); // synchronously: the slot is taken at once
    expect(breaker.admits).toBe(false);
    const second = vi.fn(() => Promise.resolve('x'));
    await expect(breaker.probe(second)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(second).not.toHaveBeenCalled();
    finish('ok');
    await expect(probe).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    expect(breaker.admits).toBe(true);
    expect(changes).toEqual([
      ['open', 'closed'],
      ['half-open', 'open'],
      ['closed', 'half-open'],
    ]);
    breaker.shutdown();
  });

  it('a failed probe re-opens the circuit and restarts the reset timer', async () => {
    const { breaker, changes } = setup({ volumeThreshold: 1 });
    await toHalfOpen(breaker);
    const err = new Error('still down');
    await expect(breaker.probe(() => Promise.reject(err))).rejects.toBe(err);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(999);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(breaker.state).toBe('half-open');
    expect(changes.map(([s, p]) => `${p}->${s}`)).toEqual([
      'closed->open',
      'open->half-open',
      'half-open->open',
      'open->half-open',
    ]);
    breaker.shutdown();
  });

  it('a probe rejection the policy says was answered closes the circuit, and is passed on', async () => {
    const answered = (err: unknown) => (err as { code?: string }).code === 'ANSWERED';
    const { breaker } = setup({ volumeThreshold: 1 }, { counts: () => true, answered });
    await toHalfOpen(breaker);
    const err = Object.assign(new Error('no such row'), { code: 'ANSWERED' });
    await expect(breaker.probe(() => Promise.reject(err))).rejects.toBe(err);
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });

  it('passes on a probe rejection that is not an Error (no crash on null or a symbol)', async () => {
    const { breaker } = setup({ volumeThreshold: 1 });
    await toHalfOpen(breaker);
    const marker = Symbol('failed');
    await expect(breaker.probe(() => Promise.reject(marker))).rejects.toBe(marker);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(breaker.probe(() => Promise.reject(null))).rejects.toBeNull();
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('refuses a probe while open with a stackless CircuitOpenError naming the circuit', async () => {
    const { breaker } = setup({ volumeThreshold: 1 });
    breaker.countFailure();
    const work = vi.fn(() => Promise.resolve(1));
    const err = await breaker.probe(work).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(err).toMatchObject({ code: 'E_CIRCUIT_OPEN', endpoint: 'dep' });
    expect(work).not.toHaveBeenCalled();
    breaker.shutdown();
  });

  it('starts with a clean record after closing', async () => {
    const { breaker } = setup({ volumeThreshold: 2 });
    breaker.countFailure();
    breaker.countFailure();
    await vi.advanceTimersByTimeAsync(1_000);
    await breaker.probe(() => Promise.resolve(1));
    expect(breaker.state).toBe('closed');
    breaker.countFailure(); // one call in the window: below volume
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });
});

describe('CircuitBreaker: hold, reset, shutdown', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('holdOpen keeps every call out, even when the reset timer half-opens it', async () => {
    const { breaker } = setup();
    breaker.holdOpen();
    expect(breaker.state).toBe('open');
    expect(breaker.admits).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(breaker.state).toBe('half-open');
    expect(breaker.admits).toBe(false);
    breaker.releaseHold();
    expect(breaker.state).toBe('closed');
    expect(breaker.admits).toBe(true);
    breaker.shutdown();
  });

  it('releaseHold without a hold changes nothing', () => {
    const { breaker, changes } = setup({ volumeThreshold: 1 });
    breaker.countFailure();
    breaker.releaseHold();
    expect(breaker.state).toBe('open');
    expect(changes).toEqual([['open', 'closed']]);
    breaker.shutdown();
  });

  it('reset closes at once, ends a hold, and forgets the record', () => {
    const { breaker } = setup({ volumeThreshold: 2 });
    breaker.countFailure();
    breaker.holdOpen();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(breaker.admits).toBe(true);
    breaker.countFailure(); // the failure before the reset was forgotten
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });

  it('shutdown leaves no timer behind and reports no later change', async () => {
    const { breaker, changes } = setup({ volumeThreshold: 1 });
    breaker.countFailure();
    breaker.shutdown();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(changes).toEqual([['open', 'closed']]);
  });
});
