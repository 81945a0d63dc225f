/**
 * The one retry loop, driven by p-retry, used by every caller that tries again: the call path
 * (statements and checkouts) and transactions (re-runs after conflicts). It is entered only after
 * a first failure, so the success path never pays for p-retry: p-retry's first attempt re-throws
 * that failure and p-retry's loop decides from there, with our decision and our sleep (full
 * jitter, abortable, ended by the pool's lifetime).
 */
import pRetry from 'p-retry';
import { tookDeadClient } from './policy.js';
import { afterPendingIo, sleep } from './sleep.js';

export interface RetryLoop<T> {
  /** The failure that started the loop. */
  first: unknown;
  /** Tries after the first. */
  retries: number;
  /** Runs try number `attemptNumber` (2 and up); `lastError` is what the previous one threw. */
  attempt(attemptNumber: number, lastError: unknown): Promise<T>;
  /**
   * After try `attemptNumber` failed with `error`: the pause in ms before the next try, or false
   * to stop and reject with `error`. Called once per failure, so it may count and emit.
   */
  decide(error: unknown, attemptNumber: number): number | false;
  /** The call's signal: a pause ends with its AbortedError or TimeoutError. */
  signal?: AbortSignal | undefined;
  /** The pool's lifetime: a pause ends with its reason (PoolClosedError) at `end()`. */
  lifetime?: AbortSignal | undefined;
}

export function retryAfterFailure<T>(loop: RetryLoop<T>): Promise<T> {
  let lastError: unknown = loop.first;
  return pRetry(
    (attemptNumber: number) =>
      attemptNumber === 1 ? Promise.reject(loop.first) : loop.attempt(attemptNumber, lastError),
    {
      retries: loop.retries,
      // Pauses are ours (full jitter, abortable): p-retry's own are zero.
      minTimeout: 0,
      maxTimeout: 0,
      factor: 1,
      randomize: false,
      shouldRetry: async ({ error, attemptNumber }) => {
        lastError = error;
        const delayMs = loop.decide(error, attemptNumber);
        if (delayMs === false) return false;
        if (delayMs > 0) await sleep(delayMs, loop.signal, loop.lifetime);
        else if (tookDeadClient(error)) await afterPendingIo(loop.signal, loop.lifetime);
        return true;
      },
    },
  );
}
