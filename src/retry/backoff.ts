import type { RetryOptions } from '../options/policy-types.js';

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
