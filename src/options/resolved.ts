/**
 * What the validators hand to the rest of the library: every option checked and every default
 * filled in, so no other module repeats a default or a check. Internal; not part of the .d.ts.
 */
import type { CacheStore } from '../cache/store.js';
import type { PgPoolLike } from '../pg-like.js';
import type { LoggerLike } from '../telemetry/logger.js';
import type { ResolvedAdaptiveLimit } from './adaptive-limit.js';
import type { CacheBreakerOptions, CacheLockOptions, CacheScope } from './cache-types.js';
import type { ResolvedConsolidationOptions } from './consolidation.js';
import type { ResolvedFailoverOptions } from './failover.js';
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
  health: Required<HealthOptions>;
  lag: { maxLagMs: number | undefined; maxLagBytes: number | undefined };
  failover: ResolvedFailoverOptions;
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
