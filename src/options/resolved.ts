/**
 * What the validators hand to the rest of the library: every option checked and every default
 * filled in, so no other module repeats a default or a check. Internal; not part of the .d.ts.
 */
import type { CacheStore } from '../cache/store.js';
import type { PgPoolLike } from '../pg-like.js';
import type { LoggerLike } from '../telemetry/logger.js';
import type {
  MeterProviderLike,
  OtelApi,
  TracerProviderLike,
} from '../telemetry/otel/api-types.js';
import type { ResolvedAdaptiveLimit } from './adaptive-limit.js';
import type { CacheBreakerOptions, CacheLockOptions, CacheScope } from './cache-types.js';
import type { ResolvedConsolidationOptions } from './consolidation.js';
import type { ResolvedFailoverOptions } from './failover.js';
import type { ResolvedHedgeOptions } from './hedge.js';
import type { ResolvedRecoveryOptions } from './outlier.js';
import type { BreakerOptions, QueueOptions, RetryOptions, RoutingOptions } from './policy-types.js';
import type { HealthOptions } from './types.js';

export interface ResolvedHygieneOptions {
  validate: { idleAfter: number | undefined; timeout: number; primaryWritable: boolean };
  resetOnRelease: 'none' | 'discard';
  leakDetection: { threshold: number | undefined };
}

export interface ResolvedEndpointConfig {
  pool: PgPoolLike;
  name: string;
  weight: number;
  maxConcurrent: number;
}

type LagLimit = 'maxLagMs' | 'maxLagBytes';
/** Routing options with defaults filled; the lag limits have none (no limit). */
export type ResolvedRoutingOptions = Required<Omit<RoutingOptions, LagLimit>> &
  Pick<RoutingOptions, LagLimit>;

export interface ResolvedOptions {
  primary: ResolvedEndpointConfig;
  /** With a list of primary candidates: each with its name ('primary-1', ... by default). */
  primaryCandidates: ResolvedEndpointConfig[] | undefined;
  replicas: ResolvedEndpointConfig[];
  breaker: Required<BreakerOptions>;
  retry: Required<RetryOptions>;
  queue: Required<Omit<QueueOptions, 'adaptiveLimit'>> & {
    adaptiveLimit: ResolvedAdaptiveLimit | false;
  };
  routing: ResolvedRoutingOptions;
  logger: LoggerLike | false | undefined;
  ownsPools: boolean;
  hygiene: ResolvedHygieneOptions;
  cache: ResolvedCacheOptions | undefined;
  consolidation: ResolvedConsolidationOptions;
  /** Hedged reads; `enabled: false` (the default) leaves the read path as it is. */
  hedge: Readonly<ResolvedHedgeOptions>;
  health: Required<HealthOptions>;
  failover: ResolvedFailoverOptions;
  lag: { maxLagMs: number | undefined; maxLagBytes: number | undefined };
  /** OpenTelemetry metrics; undefined when off. */
  metrics: ResolvedMetrics | undefined;
  /** OpenTelemetry traces; undefined when off. */
  tracing: ResolvedTracing | undefined;
  /** Outlier ejection, slow start and connection pacing. */
  recovery: ResolvedRecoveryOptions;
}

/** Metrics on: the provider to take the meter from (the global one already looked up). */
export interface ResolvedMetrics {
  meterProvider: MeterProviderLike;
}

/** Tracing on. */
export interface ResolvedTracing {
  tracerProvider: TracerProviderLike;
  queryText: boolean;
  /**
   * The API's context and trace functions, for the parent of each span and for running the call
   * in its span's context; null when `@opentelemetry/api` cannot be loaded from here (a provider
   * was given, in a bundle say): spans are then roots and nothing nests under them.
   */
  api: Pick<OtelApi, 'context' | 'trace'> | null;
}

export interface ResolvedCacheOptions {
  store: CacheStore;
  prefix: string;
  namespace: string | undefined;
  scope: CacheScope | undefined;
  ttl: number;
  jitter: number;
  grace: number;
  timeout: number;
  lock: Required<CacheLockOptions> | false;
  breaker: Required<CacheBreakerOptions>;
  maxEntryBytes: number;
}

/** One cached call's settings, defaults applied. */
export interface CallSettings {
  ttl: number;
  grace: number;
  tags: readonly string[];
  key: string | undefined;
  scope: CacheScope | undefined;
}
