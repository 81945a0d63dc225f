/**
 * Retry policy pieces: full-jitter backoff, an abortable sleep, the rule for what may be re-sent,
 * and a retry budget. p-retry drives the loop (see call-path.ts); it is entered only after a
 * first failure, so the success path never pays for it.
 */
import { classify, isRetryable } from '../classify.js';
import { abortError } from '../errors.js';
import type { RetryOptions } from '../options.js';

/**
 * Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): the n-th retry waits a
 * uniformly random time in [0, min(maxTimeout, minTimeout * factor^(n-1))], which spreads
 * clients that failed together instead of having them retry in lock-step.
 */
export function backoffDelay(
  retryNumber: number,
  options: Pick<Required<RetryOptions>, 'minTimeout' | 'maxTimeout' | 'factor'>,
  random: () => number = Math.random,
): number {
  const cap = Math.min(
    options.maxTimeout,
    options.minTimeout * options.factor ** (retryNumber - 1),
  );
  return Math.floor(random() * cap);
}

/**
 * Resolves after `ms`, or rejects as soon as `signal` fires (AbortedError, or the call's
 * TimeoutError) or `lifetime` does (with its reason: the pool's PoolClosedError at `end()`), so
 * that no sleep outlives its call or its pool.
 */
export function sleep(ms: number, signal?: AbortSignal, lifetime?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(undefined, signal));
  if (lifetime?.aborted) return Promise.reject(lifetime.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const stop = (err: unknown) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      lifetime?.removeEventListener('abort', onEnd);
      reject(err);
    };
    const onAbort = () => stop(abortError(undefined, signal as AbortSignal));
    const onEnd = () => stop((lifetime as AbortSignal).reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      lifetime?.removeEventListener('abort', onEnd);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
    lifetime?.addEventListener('abort', onEnd, { once: true });
  });
}

/**
 * Errors known to have happened before the statement was written to the socket: failed
 * connects and clients that were already unusable. Marked where they are caught, read by the
 * retry rule. A WeakSet, so driver errors are not mutated.
 */
const NOT_SENT = new WeakSet<object>();

export function markNotSent<E>(err: E): E {
  if (typeof err === 'object' && err !== null) NOT_SENT.add(err);
  return err;
}

/** Whether the statement behind `err` certainly never reached the server. */
export function wasNotSent(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (NOT_SENT.has(err)) return true;
  // The library's own refusals (open circuit, full queue, acquire timeout) happen before sending.
  const errorClass = classify(err);
  return errorClass === 'unavailable' || (err as { code?: unknown }).code === 'E_ACQUIRE_TIMEOUT';
}

/**
 * The one rule for re-sending a single statement (pgx's SafeToRetry): only when the condition is
 * transient AND the statement cannot have applied twice: nothing was sent, or it ran on a hot
 * standby (which cannot write), or the caller said it is idempotent. A statement that may have
 * run on a writable server is never re-sent on the caller's behalf. Conflicts (40001, 40P01,
 * 55P03) and read-only refusals (25006) are safe too: PostgreSQL applied nothing.
 */
export function mayRetryStatement(
  err: unknown,
  idempotent: boolean,
  ranOnHotStandby: boolean,
): boolean {
  if (!isRetryable(err)) return false;
  const errorClass = classify(err);
  if (errorClass === 'conflict' || errorClass === 'read-only') return true;
  return idempotent || ranOnHotStandby || wasNotSent(err);
}

/**
 * Caps retries at `percent` of the calls seen in a sliding window, plus a small reserve, so that
 * during an outage retries add at most that share of load (Finagle's RetryBudget). The window
 * slides when `rotate()` is called, once per bucket, by the pool's housekeeping timer; counting a
 * call is a single increment.
 */
export class RetryBudget {
  private readonly calls: number[];
  private readonly retries: number[];
  private index = 0;
  private windowCalls = 0;
  private windowRetries = 0;

  constructor(
    private readonly percent: number,
    private readonly reserve: number,
    buckets = 10,
  ) {
    this.calls = new Array(buckets).fill(0);
    this.retries = new Array(buckets).fill(0);
  }

  recordCall(): void {
    this.windowCalls++;
  }

  /** Takes one retry from the budget; false when the budget is spent. */
  tryWithdraw(): boolean {
    if (this.windowRetries + 1 > this.reserve + (this.windowCalls * this.percent) / 100) {
      return false;
    }
    this.windowRetries++;
    this.retries[this.index]!++;
    return true;
  }

  /** Advances the window by one bucket, forgetting the oldest. */
  rotate(): void {
    // Calls are counted into the window total only (one increment on the hot path); attribute
    // those since the last rotation to the bucket being closed.
    const attributed = this.calls.reduce((a, b) => a + b, 0);
    this.calls[this.index] = this.windowCalls - attributed;
    this.index = (this.index + 1) % this.calls.length;
    this.windowCalls -= this.calls[this.index]!;
    this.windowRetries -= this.retries[this.index]!;
    this.calls[this.index] = 0;
    this.retries[this.index] = 0;
  }
}
