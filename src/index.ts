export type {
  CacheBreakerOptions,
  CacheCallOptions,
  CacheHandle,
  CacheInfo,
  CacheLockOptions,
  CacheOptions,
  CacheScope,
  CacheScopeContext,
  CacheStats,
  CacheStore,
  MemoryStoreOptions,
  RedisLike,
} from './cache/index.js';
export { cacheInfo, MemoryStore, RedisStore } from './cache/index.js';
export type { ErrorClass } from './classify.js';
export { classify, isRetryable } from './classify.js';
export type { ConsistencyToken } from './consistency/token.js';
export { consistencyToken } from './consistency/token.js';
export type { ResilientPoolErrorCode } from './errors.js';
export {
  AbortedError,
  AcquireTimeoutError,
  CircuitOpenError,
  ConfigError,
  EndpointDownError,
  NoHealthyEndpointError,
  OutcomeUnknownError,
  PoolClosedError,
  QueueFullError,
  ResilientPoolError,
  TimeoutError,
  TransactionOutcomeUnknownError,
} from './errors.js';
export type { HealthState } from './health/types.js';
export type {
  BreakerOptions,
  EndpointConfig,
  HealthOptions,
  LeakDetectionOptions,
  QueueOptions,
  ResilientPoolOptions,
  RetryOptions,
  RoutingOptions,
  ValidateOptions,
} from './options.js';
export type { PgClientLike, PgPoolLike, QueryConfigLike, QueryResultLike } from './pg-like.js';
export type {
  CallOptions,
  ConnectOptions,
  EndOptions,
  ReadOptions,
  WriteOptions,
} from './resilient-pool.js';
export { ResilientPool } from './resilient-pool.js';
export type { BalancerKind } from './routing/balancers/balancer.js';
export type {
  BreakerState,
  EndpointRole,
  RejectReason,
  ResilientPoolEvents,
} from './telemetry/events.js';
export type { LoggerLike } from './telemetry/logger.js';
export type { EndpointStats, PoolStats } from './telemetry/stats.js';
export type { Transaction, TransactionAttempt, TransactionOptions } from './transaction.js';
