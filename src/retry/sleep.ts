import { abortError } from '../errors.js';

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
 * Resolves once the I/O already pending has been handled (a turn of the event loop), or rejects
 * as `sleep` does. A retry that goes at once after its call took a dead client waits this long:
 * one network event resets many connections together, and until their errors are read the pools
 * hand their dead idle clients out, so a retry sent in the same turn would land on another one.
 */
export function afterPendingIo(signal?: AbortSignal, lifetime?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(undefined, signal));
  if (lifetime?.aborted) return Promise.reject(lifetime.reason);
  return new Promise((resolve) => nextTurn(resolve));
}

/**
 * The event loop's own setImmediate, taken when this module loads: a turn of the loop is not a
 * timer, so fake timers installed later (a test's) do not hold retries back.
 */
const nextTurn: (callback: () => void) => unknown = globalThis.setImmediate;
