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
