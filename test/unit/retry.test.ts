import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AbortedError, AcquireTimeoutError, CircuitOpenError } from '../../src/errors.js';
import { backoffDelay } from '../../src/retry/backoff.js';
import { RetryBudget } from '../../src/retry/budget.js';
import { markNotSent, mayRetryStatement, wasNotSent } from '../../src/retry/policy.js';
import { sleep } from '../../src/retry/sleep.js';
import { pgError, socketError } from '../support/fake-pool.js';

const policy = { minTimeout: 25, maxTimeout: 1000, factor: 2 };

describe('backoffDelay (full jitter)', () => {
  it.each([
    [1, 25],
    [2, 50],
    [3, 100],
    [4, 200],
    [6, 800],
    [7, 1000],
    [20, 1000],
  ])('retry %i waits in [0, %i)', (n, cap) => {
    expect(backoffDelay(n, policy, () => 0)).toBe(0);
    expect(backoffDelay(n, policy, () => 0.5)).toBe(Math.floor(cap / 2));
    expect(backoffDelay(n, policy, () => 0.999999)).toBe(cap - 1);
  });

  it('spreads delays across the whole interval', () => {
    const delays = Array.from({ length: 2000 }, () => backoffDelay(3, policy));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(100);
    // Full jitter: both halves of the interval are used.
    expect(delays.some((d) => d < 25)).toBe(true);
    expect(delays.some((d) => d > 75)).toBe(true);
  });
});

describe('sleep', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('resolves after the delay', async () => {
    let done = false;
    const p = sleep(100).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(99);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('ends at once on abort and clears its timer', async () => {
    const controller = new AbortController();
    const p = sleep(10_000, controller.signal);
    controller.abort('stop');
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(vi.getTimerCount()).toBe(0);
    await expect(sleep(10, AbortSignal.abort())).rejects.toBeInstanceOf(AbortedError);
  });
});

describe('mayRetryStatement: only when nothing was sent, it ran on a hot standby, or idempotent', () => {
  it('retries connection failures that happened before sending', () => {
    expect(mayRetryStatement(markNotSent(socketError('ECONNREFUSED')), false, false)).toBe(true);
    expect(mayRetryStatement(new AcquireTimeoutError('p', 10), false, false)).toBe(true);
    expect(mayRetryStatement(new CircuitOpenError('p'), false, false)).toBe(true);
  });

  it('never re-sends a non-idempotent statement that may have run', () => {
    const lost = new Error('Connection terminated unexpectedly');
    expect(wasNotSent(lost)).toBe(false);
    expect(mayRetryStatement(lost, false, false)).toBe(false);
    expect(mayRetryStatement(lost, true, false)).toBe(true);
    expect(mayRetryStatement(socketError('ECONNRESET'), false, false)).toBe(false);
  });

  it('re-sends a statement that may have run only on a hot standby (which cannot write)', () => {
    const lost = new Error('Connection terminated unexpectedly');
    expect(mayRetryStatement(lost, false, true)).toBe(true);
    expect(mayRetryStatement(pgError('23505'), false, true)).toBe(false);
  });

  it('retries conflicts and read-only refusals (nothing was applied)', () => {
    expect(mayRetryStatement(pgError('40001'), false, false)).toBe(true);
    expect(mayRetryStatement(pgError('25006'), false, false)).toBe(true);
  });

  it('never retries permanent errors or unknown outcomes, even idempotent', () => {
    expect(mayRetryStatement(pgError('23505'), true, false)).toBe(false);
    expect(mayRetryStatement(pgError('57014'), true, false)).toBe(false);
    expect(mayRetryStatement(pgError('08007'), true, false)).toBe(false);
  });
});

describe('RetryBudget', () => {
  it('allows the reserve with no traffic, then nothing', () => {
    const budget = new RetryBudget(10, 3);
    expect([1, 2, 3, 4].map(() => budget.tryWithdraw())).toEqual([true, true, true, false]);
  });

  it('allows budgetPercent of recent calls on top of the reserve', () => {
    const budget = new RetryBudget(10, 0);
    for (let i = 0; i < 100; i++) budget.recordCall();
    let granted = 0;
    while (budget.tryWithdraw()) granted++;
    expect(granted).toBe(10);
  });

  it('forgets calls and retries that slid out of the window', () => {
    const budget = new RetryBudget(10, 0, 10);
    for (let i = 0; i < 100; i++) budget.recordCall();
    for (let i = 0; i < 10; i++) expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
    for (let b = 0; b < 9; b++) budget.rotate();
    // Still inside the 10-bucket window.
    expect(budget.tryWithdraw()).toBe(false);
    budget.rotate();
    // Calls and retries of the first bucket are gone together.
    expect(budget.tryWithdraw()).toBe(false);
    for (let i = 0; i < 50; i++) budget.recordCall();
    let granted = 0;
    while (budget.tryWithdraw()) granted++;
    expect(granted).toBe(5);
  });
});
