/**
 * The cache's circuit breaker over its store: the shared CircuitBreaker, with the endpoints'
 * semantics (opens on a failure rate over a rolling window or on a streak of consecutive
 * failures; half-opens after `resetTimeout`; one probe, whose outcome closes or re-opens it).
 * Every store failure counts (an error, a timeout, a reply that does not fit), so it needs no
 * failure policy of its own; its window is a fixed 10 s (docs/cache.md).
 */
import { CircuitBreaker } from '../breaker/circuit-breaker.js';
import type { BreakerStateListener } from '../breaker/types.js';
import type { CacheBreakerOptions } from '../options/cache-types.js';

/** The rolling window the failure rate is computed over. */
const WINDOW_MS = 10_000;
const WINDOW_BUCKETS = 10;

/** The breaker of one cache, from its resolved `cache.breaker` options. */
export function createCacheBreaker(
  options: Required<CacheBreakerOptions>,
  onStateChange: BreakerStateListener,
): CircuitBreaker {
  return new CircuitBreaker(
    'cache',
    {
      enabled: true,
      consecutiveFailures: options.consecutiveFailures,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      resetTimeout: options.resetTimeout,
      rollingCountTimeout: WINDOW_MS,
      rollingCountBuckets: WINDOW_BUCKETS,
    },
    onStateChange,
  );
}
