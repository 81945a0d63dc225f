/**
 * Every default of every option, pool, cache and call alike, in one table: the JSDoc `@default`
 * of each option type says the same, and no other module writes a default of its own. Applied
 * with `??` or a spread of the checked keys, never `||`, so a deliberate 0 stays 0.
 */
import type { CacheBreakerOptions, CacheLockOptions, CacheOptions } from './cache-types.js';
import type { HedgeSettings } from './hedge-types.js';
import type { BreakerOptions, QueueOptions, RetryOptions, RoutingOptions } from './policy-types.js';
import type { TracingOptions } from './telemetry-types.js';
import type { HealthOptions, ResilientPoolOptions, ValidateOptions } from './types.js';

type CacheDefaulted = 'prefix' | 'ttl' | 'jitter' | 'grace' | 'timeout' | 'maxEntryBytes';

export const DEFAULTS = {
  endpoint: {
    weight: 1,
    /** pg's own default pool size, for a pool that does not expose `options.max`. */
    maxConcurrent: 10,
  },
  breaker: {
    enabled: true,
    errorThresholdPercentage: 50,
    volumeThreshold: 10,
    consecutiveFailures: 5,
    resetTimeout: 5_000,
    slowCallMs: 30_000,
    rollingCountTimeout: 10_000,
    rollingCountBuckets: 10,
  },
  retry: {
    retries: 3,
    minTimeout: 25,
    maxTimeout: 1_000,
    factor: 2,
    budgetPercent: 10,
    budgetMinRetries: 10,
  },
  queue: { maxWaiting: 200, acquireTimeout: 2_000, maxQueueDelayMs: 0, adaptiveLimit: false },
  routing: {
    balancer: 'least-busy',
    queryRouting: 'primary',
    fallbackToPrimary: true,
    consistencyWaitMs: 100,
  },
  // `idleAfter` and `leakDetection.threshold` have none: left out, the check is off.
  validate: { timeout: 1_000, primaryWritable: false },
  health: { enabled: true, intervalMs: 1_000, timeoutMs: 1_000 },
  resetOnRelease: 'none',
  ownsPools: true,
  /** Outlier ejection (needs the health monitor), slow start, connection pacing. */
  outlier: { enabled: true, slowMs: 500, maxEjectionPercent: 50 },
  slowStart: { windowMs: 5_000, minWeightPercent: 10 },
  connectPacing: { enabled: true },
  failover: {
    /** With `primary: [candidates]`: Vitess's default buffering window. */
    bufferMs: 10_000,
    /** With a single primary: off, since no other server can be found to take the writes. */
    singlePrimaryBufferMs: 0,
    /** Vitess's default buffer size. */
    maxBuffered: 1_000,
  },
  /** Settings of `queue.adaptiveLimit` when on (its limits default to the endpoint's size). */
  adaptiveLimit: {
    algorithm: 'gradient2',
    minLimit: 1,
    windowMs: 100,
    minSamples: 10,
    gradient2: { tolerance: 1.5, smoothing: 0.2, longWindow: 6_000, queueSize: 1 },
    vegas: { smoothing: 1, probeMultiplier: 30 },
  },
  consolidation: { enabled: false, maxWaiters: 100 },
  /** Hedged reads: off unless `hedge` is given; these apply once it is (true or an object). */
  hedge: {
    enabled: false,
    delay: 'adaptive',
    quantile: 0.95,
    minDelayMs: 5,
    maxDelayMs: 500,
    budgetPercent: 5,
    budgetMinHedges: 10,
    cancelAfterMs: 1_000,
  },
  // `metrics` and `tracing` are off when left out; on, the provider defaults to the global one.
  tracing: { queryText: false },
  cache: {
    prefix: 'rp:',
    ttl: 30_000,
    jitter: 0.1,
    grace: 0,
    timeout: 50,
    maxEntryBytes: 1_048_576,
    lock: { ttl: 5_000, wait: 250, poll: 50 },
    breaker: {
      consecutiveFailures: 3,
      errorThresholdPercentage: 50,
      volumeThreshold: 10,
      resetTimeout: 2_000,
    },
  },
  /** Options of single calls (the per-call cache settings default to the pool's `cache`). */
  call: {
    transaction: { retries: 3 },
    end: { timeout: 10_000 },
  },
} as const satisfies {
  endpoint: { weight: number; maxConcurrent: number };
  breaker: Required<BreakerOptions>;
  retry: Required<RetryOptions>;
  queue: Required<QueueOptions>;
  routing: Required<Omit<RoutingOptions, 'maxLagMs' | 'maxLagBytes'>>;
  validate: Required<Omit<ValidateOptions, 'idleAfter'>>;
  health: Required<HealthOptions>;
  resetOnRelease: NonNullable<ResilientPoolOptions['resetOnRelease']>;
  ownsPools: boolean;
  outlier: { enabled: boolean; slowMs: number; maxEjectionPercent: number };
  slowStart: { windowMs: number; minWeightPercent: number };
  connectPacing: { enabled: boolean };
  failover: { bufferMs: number; singlePrimaryBufferMs: number; maxBuffered: number };
  adaptiveLimit: {
    algorithm: 'gradient2' | 'vegas';
    minLimit: number;
    windowMs: number;
    minSamples: number;
    gradient2: { tolerance: number; smoothing: number; longWindow: number; queueSize: number };
    vegas: { smoothing: number; probeMultiplier: number };
  };
  consolidation: { enabled: boolean; maxWaiters: number };
  hedge: Required<HedgeSettings> & { enabled: boolean };
  tracing: Required<Pick<TracingOptions, 'queryText'>>;
  cache: Required<Pick<CacheOptions, CacheDefaulted>> & {
    lock: Required<CacheLockOptions>;
    breaker: Required<CacheBreakerOptions>;
  };
  call: { transaction: { retries: number }; end: { timeout: number } };
};

/** The cache's part of the table, under the name the cache has always used. */
export const CACHE_DEFAULTS = DEFAULTS.cache;
