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
  FailoverBufferFullError,
  FailoverTimeoutError,
  NoHealthyEndpointError,
  OutcomeUnknownError,
  PoolClosedError,
  QueueFullError,
  ResilientPoolError,
  TimeoutError,
  TransactionOutcomeUnknownError,
  TransactionRolledBackError,
} from './errors.js';
export type { HealthState } from './health/types.js';
export type {
  AdaptiveLimitBaseOptions,
  AdaptiveLimitOption,
  Gradient2LimitOptions,
  VegasLimitOptions,
} from './options/adaptive-limit-types.js';
export type {
  ConsolidationOption,
  ConsolidationSettings,
} from './options/consolidation-types.js';
export type { FailoverOptions } from './options/failover-types.js';
export type { HedgeOption, HedgeSettings } from './options/hedge-types.js';
export type {
  BreakerOptions,
  QueueOptions,
  RetryOptions,
  RoutingOptions,
} from './options/policy-types.js';
export type { MetricsOptions, TracingOptions } from './options/telemetry-types.js';
export type {
  EndpointConfig,
  HealthOptions,
  LeakDetectionOptions,
  ResilientPoolOptions,
  ValidateOptions,
} from './options/types.js';
export type {
  ClientOf,
  FieldDefLike,
  PgClientLike,
  PgPoolLike,
  PgQueryResult,
  QueryArrayConfigLike,
  QueryConfigLike,
  QueryResultLike,
  SubmittableLike,
} from './pg-like.js';
export type {
  CallOptions,
  ConnectOptions,
  EndOptions,
  ReadOptions,
  WriteOptions,
} from './pool/call-options.js';
export type { ConsolidationStats } from './pool/consolidation.js';
export type { FailoverBufferStats } from './pool/failover-buffer.js';
export { ResilientPool } from './pool/resilient-pool.js';
export type { EndpointStats, HedgeStats, PoolStats } from './pool/stats.js';
export type { Transaction, TransactionAttempt, TransactionOptions } from './pool/transaction.js';
export type { BalancerKind } from './routing/balancers/balancer.js';
export type {
  DescribedError,
  DiagnosticsEventName,
  DiagnosticsMessages,
  QueryChannelContext,
} from './telemetry/diagnostics.js';
export { DIAGNOSTICS_CHANNELS } from './telemetry/diagnostics.js';
export type {
  BreakerState,
  EndpointRole,
  PoolClientEvents,
  PoolEventListener,
  PoolEventName,
  RejectReason,
  ResilientPoolEvents,
} from './telemetry/events.js';
export type { LoggerLike } from './telemetry/logger.js';
export type { MeterProviderLike, TracerProviderLike } from './telemetry/otel/api-types.js';
