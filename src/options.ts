/**
 * Option types, their defaults and their validation. Every problem is collected and reported at
 * once in one ConfigError; unknown keys are problems too (a misspelt `acquireTimeOut` must not
 * silently fall back to the default). Defaults use `??`, so a deliberate 0 stays 0.
 */
import {
  type CacheOptions,
  type ResolvedCacheOptions,
  resolveCacheOptions,
} from './cache/options.js';
import { ConfigError } from './errors.js';
import type { PgPoolLike } from './pg-like.js';
import type { BalancerKind } from './routing/balancers/balancer.js';
import type { LoggerLike } from './telemetry/logger.js';

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

/** Circuit breaker per endpoint (opossum). Only health failures count; SQL errors do not. */
export interface BreakerOptions {
  /**
   * Set false to never open circuits (failures are still counted in stats).
   * @default true
   */
  enabled?: boolean;
  /**
   * Percentage of failed calls in the rolling window above which the circuit opens.
   * @default 50
   */
  errorThresholdPercentage?: number;
  /**
   * Calls needed in the rolling window before the error percentage is trusted.
   * @default 10
   */
  volumeThreshold?: number;
  /**
   * Consecutive health failures that open the circuit regardless of the percentage (0 turns this
   * off). Catches an endpoint that dies after a long run of successes, which the percentage over
   * the rolling window would take many failures to notice.
   * @default 5
   */
  consecutiveFailures?: number;
  /**
   * Time an open circuit waits before letting one probe call through (half-open), in ms.
   * @default 5000
   */
  resetTimeout?: number;
  /**
   * A statement still running after this long (ms) counts once as a health failure against its
   * endpoint's circuit, while it is still in flight (Resilience4j's `slowCallDurationThreshold`),
   * so a server that stops answering opens the circuit even though its calls never fail. Noticed
   * between 1 and 1.5 times this after the statement was sent; 0 turns it off. Set it above your
   * longest legitimate statement: slow-but-answering calls count like failures.
   * @default 30000
   */
  slowCallMs?: number;
  /**
   * Length of the rolling window of call statistics, in ms.
   * @default 10000
   */
  rollingCountTimeout?: number;
  /**
   * Buckets in the rolling window; must divide `rollingCountTimeout` evenly.
   * @default 10
   */
  rollingCountBuckets?: number;
}

/**
 * Retry of calls that failed before anything was sent (acquire timeout, connection refused, open
 * circuit on one replica), with exponential backoff and full jitter: the n-th retry waits a random
 * time in [0, min(maxTimeout, minTimeout * factor^(n-1))].
 */
export interface RetryOptions {
  /**
   * Retries after the first attempt (0 disables retry).
   * @default 3
   */
  retries?: number;
  /**
   * Backoff cap of the first retry, in ms.
   * @default 25
   */
  minTimeout?: number;
  /**
   * Largest backoff cap, in ms.
   * @default 1000
   */
  maxTimeout?: number;
  /**
   * Growth of the backoff cap per retry.
   * @default 2
   */
  factor?: number;
  /**
   * Retries allowed as a percentage of calls in the last 10 seconds, so that retries cannot
   * multiply the load on a failing database.
   * @default 10
   */
  budgetPercent?: number;
  /**
   * Retries always allowed per 10 seconds regardless of traffic, so a quiet service can still retry.
   * @default 10
   */
  budgetMinRetries?: number;
}

/** The bounded wait queue in front of each endpoint. */
export interface QueueOptions {
  /**
   * Most calls waiting for a connection per endpoint; one more is refused at once with
   * QueueFullError instead of piling up.
   * @default 200
   */
  maxWaiting?: number;
  /**
   * Longest wait for a connection (queue plus connect), in ms, before AcquireTimeoutError.
   * @default 2000
   */
  acquireTimeout?: number;
}

/** Where calls go. */
export interface RoutingOptions {
  /**
   * How `read()` picks among usable replicas.
   * @default 'least-busy'
   */
  balancer?: BalancerKind;
  /**
   * Where `query()` goes: 'primary' (always, as a drop-in pg.Pool is expected to), or 'auto' (a
   * conservative classifier sends plain SELECT/SHOW/EXPLAIN/VALUES/TABLE to replicas).
   * @default 'primary'
   */
  queryRouting?: 'primary' | 'auto';
  /**
   * A replica whose replay is further behind the primary than this (ms) gets no reads until it
   * catches up (pgpool-II's delay_threshold, ProxySQL's max_replication_lag). An idle primary
   * does not count as lag. Needs the health monitor.
   * @default undefined (no limit)
   */
  maxLagMs?: number;
  /**
   * Like `maxLagMs`, in bytes of WAL not yet replayed (primary position minus replay position).
   * @default undefined (no limit)
   */
  maxLagBytes?: number;
  /**
   * A read that must see a write (`after` a consistency token, or inside `db.session()`) waits
   * this long (ms) for a replica to replay up to the write, then reads from the primary.
   * @default 100
   */
  consistencyWaitMs?: number;
  /**
   * Let reads use the primary when no replica is usable; when false such reads fail with
   * NoHealthyEndpointError.
   * @default true
   */
  fallbackToPrimary?: boolean;
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
  health?: HealthOptions;
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

export interface ResolvedOptions {
  primary: ResolvedEndpointConfig;
  /** With a list of primary candidates: each with its name ('primary-1', ... by default). */
  primaryCandidates: ResolvedEndpointConfig[] | undefined;
  replicas: ResolvedEndpointConfig[];
  breaker: Required<BreakerOptions>;
  retry: Required<RetryOptions>;
  queue: Required<QueueOptions>;
  routing: ResolvedRoutingOptions;
  logger: LoggerLike | false | undefined;
  ownsPools: boolean;
  hygiene: ResolvedHygieneOptions;
  cache: ResolvedCacheOptions | undefined;
  health: Required<HealthOptions>;
  lag: { maxLagMs: number | undefined; maxLagBytes: number | undefined };
}

export const DEFAULTS = {
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
  queue: { maxWaiting: 200, acquireTimeout: 2_000 },
  routing: {
    balancer: 'least-busy',
    queryRouting: 'primary',
    fallbackToPrimary: true,
    consistencyWaitMs: 100,
  },
} as const satisfies {
  breaker: Required<BreakerOptions>;
  retry: Required<RetryOptions>;
  queue: Required<QueueOptions>;
  routing: Required<Omit<RoutingOptions, LagLimit>>;
};

type LagLimit = 'maxLagMs' | 'maxLagBytes';
/** Routing options with defaults filled; the lag limits have none (no limit). */
export type ResolvedRoutingOptions = Required<Omit<RoutingOptions, LagLimit>> &
  Pick<RoutingOptions, LagLimit>;

/** pg's own default pool size, used when a pool does not expose `options.max`. */
const PG_DEFAULT_MAX = 10;

/** Node's timers fire after 1 ms for any delay above this (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

type Check = (value: unknown) => string | undefined;

const isInt =
  (min: number, max = Number.MAX_SAFE_INTEGER): Check =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? undefined
      : `must be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`;
const isNumber =
  (min: number, max = Number.POSITIVE_INFINITY): Check =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max
      ? undefined
      : `must be a finite number from ${min}${max === Number.POSITIVE_INFINITY ? ' up' : ` to ${max}`}`;
const isBoolean: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const isOneOf =
  (...allowed: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && allowed.includes(v)
      ? undefined
      : `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`;

const SCHEMAS: Record<
  'breaker' | 'retry' | 'queue' | 'routing' | 'validate' | 'leakDetection' | 'health',
  Record<string, Check>
> = {
  validate: {
    idleAfter: isInt(0, MAX_TIMER_MS),
    timeout: isInt(1, MAX_TIMER_MS),
    primaryWritable: isBoolean,
  },
  leakDetection: { threshold: isInt(1, MAX_TIMER_MS) },
  health: {
    enabled: isBoolean,
    intervalMs: isInt(10, MAX_TIMER_MS),
    timeoutMs: isInt(1, MAX_TIMER_MS),
  },
  breaker: {
    enabled: isBoolean,
    errorThresholdPercentage: isNumber(0, 100),
    volumeThreshold: isInt(0),
    consecutiveFailures: isInt(0),
    resetTimeout: isInt(1, MAX_TIMER_MS),
    slowCallMs: isInt(0, MAX_TIMER_MS),
    rollingCountTimeout: isInt(1, MAX_TIMER_MS),
    rollingCountBuckets: isInt(1),
  },
  retry: {
    retries: isInt(0, 100),
    minTimeout: isNumber(0, MAX_TIMER_MS),
    maxTimeout: isNumber(0, MAX_TIMER_MS),
    factor: isNumber(1),
    budgetPercent: isNumber(0, 100),
    budgetMinRetries: isInt(0),
  },
  queue: { maxWaiting: isInt(0), acquireTimeout: isInt(1, MAX_TIMER_MS) },
  routing: {
    balancer: isOneOf('round-robin', 'random', 'least-busy', 'weighted'),
    queryRouting: isOneOf('primary', 'auto'),
    fallbackToPrimary: isBoolean,
    maxLagMs: isInt(0, MAX_TIMER_MS),
    maxLagBytes: isInt(0),
    consistencyWaitMs: isInt(0, MAX_TIMER_MS),
  },
};

const TOP_LEVEL_KEYS = new Set([
  'primary',
  'replicas',
  'breaker',
  'retry',
  'queue',
  'routing',
  'logger',
  'ownsPools',
  'validate',
  'resetOnRelease',
  'leakDetection',
  'health',
  'cache',
]);
const ENDPOINT_KEYS = new Set(['pool', 'name', 'weight', 'maxConcurrent']);

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function isPoolLike(v: unknown): v is PgPoolLike {
  return (
    isPlainObjectOrInstance(v) &&
    typeof (v as { connect?: unknown }).connect === 'function' &&
    typeof (v as { end?: unknown }).end === 'function' &&
    typeof (v as { on?: unknown }).on === 'function'
  );
}
function isPlainObjectOrInstance(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

function checkGroup(
  group: keyof typeof SCHEMAS,
  value: unknown,
  problems: string[],
): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) {
    problems.push(`${group}: must be an object`);
    return {};
  }
  const schema = SCHEMAS[group];
  const given: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const check = schema[key];
    if (!check) {
      problems.push(`${group}.${key}: unknown option (known: ${Object.keys(schema).join(', ')})`);
      continue;
    }
    // An option given as undefined keeps its default, as if it were left out.
    if (v === undefined) continue;
    const problem = check(v);
    if (problem) problems.push(`${group}.${key}: ${problem}, got ${describe(v)}`);
    else given[key] = v;
  }
  return given;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined)
    return String(v);
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

function resolveEndpoint(
  path: string,
  value: unknown,
  defaultName: string,
  problems: string[],
): ResolvedEndpointConfig | undefined {
  let config: Record<string, unknown>;
  if (isPoolLike(value) && !('pool' in value)) {
    config = { pool: value };
  } else if (isPlainObject(value)) {
    config = value;
    for (const key of Object.keys(value)) {
      if (!ENDPOINT_KEYS.has(key))
        problems.push(`${path}.${key}: unknown option (known: ${[...ENDPOINT_KEYS].join(', ')})`);
    }
  } else {
    problems.push(`${path}: must be a pg.Pool or { pool, name?, weight?, maxConcurrent? }`);
    return undefined;
  }
  const { pool, name, weight, maxConcurrent } = config;
  if (!isPoolLike(pool)) {
    problems.push(`${path}.pool: must be a pg.Pool-like object with connect(), end() and on()`);
  }
  if (name !== undefined && (typeof name !== 'string' || name.length === 0)) {
    problems.push(`${path}.name: must be a non-empty string, got ${describe(name)}`);
  }
  for (const [key, v] of [
    ['weight', weight],
    ['maxConcurrent', maxConcurrent],
  ] as const) {
    const problem = v === undefined ? undefined : isInt(1)(v);
    if (problem) problems.push(`${path}.${key}: ${problem}, got ${describe(v)}`);
  }
  if (!isPoolLike(pool)) return undefined;
  const poolMax = pool.options?.max;
  return {
    pool,
    name: typeof name === 'string' && name.length > 0 ? name : defaultName,
    weight: (weight as number | undefined) ?? 1,
    maxConcurrent:
      (maxConcurrent as number | undefined) ??
      (typeof poolMax === 'number' && poolMax > 0 ? poolMax : PG_DEFAULT_MAX),
  };
}

/**
 * Endpoint names must be unique: they key stats, events, errors and the failover event's
 * `from`/`to`. The primary endpoint keeps the name 'primary' and may share it with the candidate
 * it stands for; a replica may not take a candidate's name (generated ones included).
 */
function duplicateNames(
  primary: ResolvedEndpointConfig | undefined,
  candidates: readonly ResolvedEndpointConfig[] | undefined,
  replicas: readonly ResolvedEndpointConfig[],
): string[] {
  const problems: string[] = [];
  const repeated = (names: readonly string[]) => names.filter((n, i) => names.indexOf(n) !== i);
  for (const name of new Set(repeated((candidates ?? []).map((c) => c.name)))) {
    problems.push(`endpoint names must be unique: primary candidate "${name}" repeats`);
  }
  const taken = new Set([
    ...(primary ? [primary.name] : []),
    ...(candidates ?? []).map((c) => c.name),
  ]);
  const replicaNames = replicas.map((r) => r.name);
  for (const name of new Set([
    ...repeated(replicaNames),
    ...replicaNames.filter((n) => taken.has(n)),
  ])) {
    problems.push(`endpoint names must be unique: "${name}" repeats`);
  }
  return problems;
}

function isLoggerLike(v: unknown): v is LoggerLike {
  if (!isPlainObjectOrInstance(v)) return false;
  const l = v as Record<string, unknown>;
  return ['error', 'warn', 'info', 'debug'].every((m) => typeof l[m] === 'function');
}

/** Validates options and fills in defaults. Throws ConfigError listing every problem. */
export function resolveOptions(input: unknown): ResolvedOptions {
  const problems: string[] = [];
  if (!isPlainObject(input)) {
    throw new ConfigError(['options: must be an object with at least `primary`']);
  }
  for (const key of Object.keys(input)) {
    if (!TOP_LEVEL_KEYS.has(key))
      problems.push(`${key}: unknown option (known: ${[...TOP_LEVEL_KEYS].join(', ')})`);
  }

  if (input.primary === undefined) problems.push('primary: is required');
  let primary: ResolvedEndpointConfig | undefined;
  let primaryCandidates: ResolvedEndpointConfig[] | undefined;
  if (Array.isArray(input.primary)) {
    if (input.primary.length === 0)
      problems.push('primary: a list of candidates must not be empty');
    primaryCandidates = [];
    input.primary.forEach((c, i) => {
      const resolved = resolveEndpoint(`primary[${i}]`, c, `primary-${i + 1}`, problems);
      if (resolved) primaryCandidates?.push(resolved);
    });
    const first = primaryCandidates[0];
    // The endpoint keeps its name; the candidate it forwards to is set by ResilientPool.
    if (first !== undefined) primary = { ...first, name: 'primary' };
  } else if (input.primary !== undefined) {
    primary = resolveEndpoint('primary', input.primary, 'primary', problems);
  }

  const replicas: ResolvedEndpointConfig[] = [];
  if (input.replicas !== undefined) {
    if (!Array.isArray(input.replicas)) {
      problems.push('replicas: must be an array');
    } else {
      input.replicas.forEach((r, i) => {
        const resolved = resolveEndpoint(`replicas[${i}]`, r, `replica-${i + 1}`, problems);
        if (resolved) replicas.push(resolved);
      });
    }
  }
  for (const problem of duplicateNames(primary, primaryCandidates, replicas))
    problems.push(problem);
  const pools = [...(primaryCandidates ?? (primary ? [primary] : [])), ...replicas].map(
    (e) => e.pool,
  );
  if (new Set(pools).size !== pools.length)
    problems.push('the same pool object is given for two endpoints');

  const breaker = { ...DEFAULTS.breaker, ...checkGroup('breaker', input.breaker, problems) };
  const retry = { ...DEFAULTS.retry, ...checkGroup('retry', input.retry, problems) };
  const queue = { ...DEFAULTS.queue, ...checkGroup('queue', input.queue, problems) };
  const routing = { ...DEFAULTS.routing, ...checkGroup('routing', input.routing, problems) };
  if (
    typeof retry.minTimeout === 'number' &&
    typeof retry.maxTimeout === 'number' &&
    retry.minTimeout > retry.maxTimeout
  ) {
    problems.push(
      `retry.minTimeout (${retry.minTimeout}) must not exceed retry.maxTimeout (${retry.maxTimeout})`,
    );
  }
  if (
    Number.isInteger(breaker.rollingCountTimeout) &&
    Number.isInteger(breaker.rollingCountBuckets) &&
    breaker.rollingCountTimeout % breaker.rollingCountBuckets !== 0
  ) {
    problems.push(
      `breaker.rollingCountTimeout (${breaker.rollingCountTimeout}) must be divisible by breaker.rollingCountBuckets (${breaker.rollingCountBuckets})`,
    );
  }

  if (input.logger !== undefined && input.logger !== false && !isLoggerLike(input.logger)) {
    problems.push('logger: must be a pino-compatible logger (error, warn, info, debug) or false');
  }
  const validate = checkGroup('validate', input.validate, problems);
  const leakDetection = checkGroup('leakDetection', input.leakDetection, problems);
  const health = checkGroup('health', input.health, problems);
  const resetProblem =
    input.resetOnRelease === undefined
      ? undefined
      : isOneOf('none', 'discard')(input.resetOnRelease);
  if (resetProblem)
    problems.push(`resetOnRelease: ${resetProblem}, got ${describe(input.resetOnRelease)}`);
  if (input.ownsPools !== undefined && typeof input.ownsPools !== 'boolean') {
    problems.push(`ownsPools: must be true or false, got ${describe(input.ownsPools)}`);
  }

  const cache = resolveCacheOptions(input.cache, problems);
  if (problems.length > 0 || primary === undefined) throw new ConfigError(problems);
  return {
    primary,
    primaryCandidates,
    replicas,
    breaker: breaker as Required<BreakerOptions>,
    retry: retry as Required<RetryOptions>,
    queue: queue as Required<QueueOptions>,
    routing: routing as Required<RoutingOptions>,
    logger: input.logger as LoggerLike | false | undefined,
    ownsPools: (input.ownsPools as boolean | undefined) ?? true,
    cache,
    hygiene: {
      validate: {
        idleAfter: validate.idleAfter as number | undefined,
        timeout: (validate.timeout as number | undefined) ?? 1_000,
        primaryWritable: (validate.primaryWritable as boolean | undefined) ?? false,
      },
      resetOnRelease: (input.resetOnRelease as 'none' | 'discard' | undefined) ?? 'none',
      leakDetection: { threshold: leakDetection.threshold as number | undefined },
    },
    health: {
      enabled: (health.enabled as boolean | undefined) ?? true,
      intervalMs: (health.intervalMs as number | undefined) ?? 1_000,
      timeoutMs: (health.timeoutMs as number | undefined) ?? 1_000,
    },
    lag: {
      maxLagMs: (routing as RoutingOptions).maxLagMs,
      maxLagBytes: (routing as RoutingOptions).maxLagBytes,
    },
  };
}
