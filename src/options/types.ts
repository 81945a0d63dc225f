/**
 * The public option types of ResilientPool: the options object, its endpoints, and the checks,
 * hygiene and health settings of their connections. They ship in the .d.ts as written, so each
 * option carries its JSDoc and `@default` (the values themselves live in defaults.ts).
 */
import type { PgPoolLike } from '../pg-like.js';
import type { LoggerLike } from '../telemetry/logger.js';
import type { CacheOptions } from './cache-types.js';
import type { ConsolidationOption } from './consolidation-types.js';
import type { FailoverOptions } from './failover-types.js';
import type { HedgeOption } from './hedge-types.js';
import type { ConnectPacingOptions, OutlierOptions, SlowStartOptions } from './outlier-types.js';
import type { BreakerOptions, QueueOptions, RetryOptions, RoutingOptions } from './policy-types.js';
import type { MetricsOptions, TracingOptions } from './telemetry-types.js';

/** A wrapped pool with a name and a balancing weight. */
export interface EndpointConfig {
  /** The pg.Pool (or any {@link PgPoolLike}) to wrap. */
  pool: PgPoolLike;
  /**
   * Name used in errors, logs, events and stats. Never derived from the connection string, so no
   * credential can leak through it.
   * @default 'primary', 'replica-1', 'replica-2', ...
   */
  name?: string;
  /**
   * Relative share of reads for the 'weighted' balancer (positive integer).
   * @default 1
   */
  weight?: number;
  /**
   * Most calls allowed to hold or wait for a connection of this pool at once; the rest wait in the
   * endpoint's bounded queue. Keep it at the pool's size so pg's own unbounded queue stays empty.
   * @default the pool's `options.max`, else 10 (pg's default)
   */
  maxConcurrent?: number;
}

/**
 * Checks on pooled clients before they are handed out (SQLAlchemy's `pool_pre_ping`, HikariCP's
 * validation of connections idle past 500 ms). Off by default: each check is a round trip.
 */
export interface ValidateOptions {
  /**
   * A client idle in the pool longer than this (ms) is checked with `SELECT 1` before use; a dead
   * one is destroyed and another taken, invisibly to the caller. 0 checks every reuse. Catches
   * connections a NAT, firewall or server restart dropped without the client hearing of it.
   * @default undefined (no idle check)
   */
  idleAfter?: number;
  /**
   * Longest wait for a check, in ms; a client that does not answer in time is destroyed.
   * @default 1000
   */
  timeout?: number;
  /**
   * Check each new connection to the primary for `transaction_read_only`: a read-only primary
   * (demoted after a failover) is refused and counted against its circuit.
   * @default false
   */
  primaryWritable?: boolean;
}

/** Reporting of clients from connect() that are never released (HikariCP's leak detection). */
export interface LeakDetectionOptions {
  /**
   * A client held longer than this (ms) is reported (a warning with the stack of the call that
   * took it, and a 'leak' event). It captures a stack per connect(), so it costs a little.
   * @default undefined (off)
   */
  threshold?: number;
}

/** Options of {@link ResilientPool}. */
export interface ResilientPoolOptions {
  /**
   * The writable pool: writes, transactions, `query()` by default, and read fallback. A list of
   * candidates (every node of a cluster, say) makes the pool find the writable one with
   * `pg_is_in_recovery()`, and find it again after a failover: when the primary's circuit opens
   * or it answers read-only (25006), writes wait while the candidates are asked, then go to the
   * promoted one, once.
   */
  primary: PgPoolLike | EndpointConfig | ReadonlyArray<PgPoolLike | EndpointConfig>;
  /**
   * Read replicas (hot standbys).
   * @default []
   */
  replicas?: ReadonlyArray<PgPoolLike | EndpointConfig>;
  breaker?: BreakerOptions;
  retry?: RetryOptions;
  queue?: QueueOptions;
  routing?: RoutingOptions;
  /**
   * Read-through cache for `read(..., { cache })` in Redis (your ioredis client) or in process
   * (`store: new MemoryStore()`). See docs/cache.md.
   * @default none: `read()` never caches
   */
  cache?: CacheOptions;
  /**
   * Query consolidation: identical plain reads in flight at the same time share one execution
   * (`true`, or `{ maxWaiters }`); off, only reads that pass `consolidate: true` do. See
   * {@link ConsolidationOption} for which reads qualify and what a joining read sees.
   * @default false
   */
  consolidation?: ConsolidationOption;
  /**
   * Hedged reads: a `read()` that has not answered after a delay (fixed, or its replica's recent
   * p95) is sent to a second replica too, and the first answer wins; the other statement is
   * cancelled on its server. Bounded by a budget (5% of reads by default). `true` for the
   * defaults, or settings; see {@link HedgeOption} for which reads are hedged and where their
   * hedge may go, and docs/replicas.md.
   * @default false
   */
  hedge?: HedgeOption;
  /**
   * A pino (or pino-compatible) logger; false for none.
   * @default pino at level 'warn' on stderr
   */
  logger?: LoggerLike | false;
  /**
   * Whether `end()` also ends the wrapped pools.
   * @default true
   */
  ownsPools?: boolean;
  validate?: ValidateOptions;
  /**
   * How a client from connect() is reset when released: 'discard' runs `DISCARD ALL` (drops
   * session settings, temp tables, prepared statements, like PgBouncer's server_reset_query).
   * A transaction left open is always rolled back, whatever this says.
   * @default 'none'
   */
  resetOnRelease?: 'none' | 'discard';
  leakDetection?: LeakDetectionOptions;
  /**
   * Failover buffering: while the primary is being replaced, writes and transactions that have
   * sent nothing wait (bounded) for the new primary instead of failing. See
   * {@link FailoverOptions}.
   * @default on (`bufferMs: 10000`) with a list of primary candidates; off with a single primary
   */
  failover?: FailoverOptions;
  health?: HealthOptions;
  /**
   * OpenTelemetry metrics (docs/observability.md): true or `{}` for the global meter provider of
   * `@opentelemetry/api` (installed by you: it is an optional peer dependency), or
   * `{ meterProvider }`. Off, nothing runs per query for them.
   * @default false
   */
  metrics?: boolean | MetricsOptions;
  /**
   * OpenTelemetry traces (docs/observability.md): true or `{}` for the global tracer provider of
   * `@opentelemetry/api`, or `{ tracerProvider, queryText }`. Off, nothing runs per query for
   * them.
   * @default false
   */
  tracing?: boolean | TracingOptions;
  /** A replica that goes silent stops getting reads before its circuit would open. */
  outlier?: OutlierOptions;
  /** A replica coming back from an outage gets a share of reads that ramps up. */
  slowStart?: SlowStartOptions;
  /** After an outage, new connections are opened one, then two, four, ... */
  connectPacing?: ConnectPacingOptions;
}

/** The background health monitor of replicas. */
export interface HealthOptions {
  /**
   * Probe every endpoint, the primary included, in the background (on a connection of its own):
   * eject replicas that fail, measure replication lag, and declare down an endpoint that stops
   * answering (a frozen server): its calls in flight are ended and new ones refused at once
   * until a probe passes.
   * @default true
   */
  enabled?: boolean;
  /**
   * Time between probe rounds, ms: an endpoint that stops answering is declared down within
   * about this plus `timeoutMs`.
   * @default 1000
   */
  intervalMs?: number;
  /**
   * Longest wait for one probe, ms. A probe that does not answer in time declares its endpoint
   * down, unless other calls on it were answered meanwhile (then only the probe's connection
   * was slow).
   * @default 1000
   */
  timeoutMs?: number;
}
