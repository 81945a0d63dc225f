/**
 * Options of the read-through cache: the pool-wide `cache` option and the per-call `cache` option
 * of `read()`, their defaults and their validation. As in src/options.ts, every problem is
 * reported (one message each, naming the option) and unknown keys are problems; defaults use `??`
 * so a deliberate 0 stays 0.
 */
import { type RedisLike, RedisStore } from './redis-store.js';
import type { CacheStore } from './store.js';

/** What a scope function is given: the call being cached. */
export interface CacheScopeContext {
  /** The statement text. */
  text: string;
  /** Its parameters. */
  values: readonly unknown[] | undefined;
  /** The call's tags, sorted. */
  tags: readonly string[];
}

/**
 * Who may share an entry: a fixed string (a role, a tenant), or a function of the call that
 * returns one (for example the tenant of the current request, from AsyncLocalStorage). Calls with
 * different scopes never share an entry. A function that throws, or returns something other than
 * a string, makes that read skip the cache (and logs an error) rather than risk sharing.
 */
export type CacheScope = string | ((call: CacheScopeContext) => string);

/** Cross-process fill lock: one instance runs a missing entry's query, the others wait for it. */
export interface CacheLockOptions {
  /**
   * How long a lock is held at most, in ms: after this another instance may fill the entry even
   * if the holder has not finished (or died).
   * @default 5000
   */
  ttl?: number;
  /**
   * Longest a read waits for another instance's fill, in ms, polling for the entry. When the wait
   * ends without it, the read runs the query itself.
   * @default 250
   */
  wait?: number;
  /**
   * Interval between polls while waiting, in ms.
   * @default 50
   */
  poll?: number;
}

/** The cache's circuit breaker over its store (Redis). */
export interface CacheBreakerOptions {
  /**
   * Consecutive store failures (errors or timeouts) that open the circuit (0 turns this off).
   * @default 3
   */
  consecutiveFailures?: number;
  /**
   * Percentage of failed store calls over the last 10 s above which the circuit opens.
   * @default 50
   */
  errorThresholdPercentage?: number;
  /**
   * Store calls needed in the last 10 s before the percentage is trusted.
   * @default 10
   */
  volumeThreshold?: number;
  /**
   * Time an open circuit waits before letting one probe call through (half-open), in ms.
   * @default 2000
   */
  resetTimeout?: number;
}

/**
 * The `cache` option of ResilientPool: enables `read(text, values, { cache })`.
 *
 * @example
 * import Redis from 'ioredis';
 * const redis = new Redis({ socketTimeout: 2_000, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
 * const db = new ResilientPool({ primary, replicas, cache: { redis, ttl: 60_000 } });
 */
export interface CacheOptions {
  /**
   * The application's ioredis client: `Redis`, `Cluster`, or a Sentinel-managed `Redis`. The
   * library never connects, quits or configures it (see docs/cache.md for the options to set).
   * Give `redis` or `store`, not both.
   */
  redis?: RedisLike;
  /**
   * Any other store, for example `new MemoryStore()` for a single instance or tests.
   */
  store?: CacheStore;
  /**
   * Prefix of every key the cache writes. No `{`, `}` or whitespace.
   * @default 'rp:'
   */
  prefix?: string;
  /**
   * Which data the pool reads, in its keys: pools with the same namespace (and prefix) share
   * entries, whatever their connection settings. Replaces the identity derived from the pools
   * (database, user and servers of the primary and the replicas, hashed), for example to share
   * entries between services that reach one database through different hosts (a proxy, a DNS
   * alias), or to keep apart pools whose settings look alike but whose data differ (pools
   * without pg's `options`, other type parsers). Shown as given in keys when it is a short plain
   * identifier (`[A-Za-z0-9_.-]`, up to 64), else hashed.
   * @default derived from the pools' database, user and servers
   */
  namespace?: string;
  /**
   * Who may share entries; overridable per call. See {@link CacheScope}.
   * @default none: all reads of this pool share entries
   */
  scope?: CacheScope;
  /**
   * How long an entry is fresh, in ms.
   * @default 30000
   */
  ttl?: number;
  /**
   * Random spread of each entry's ttl, as a fraction (0.1 = ±10 %), so entries written together
   * do not expire together.
   * @default 0.1
   */
  jitter?: number;
  /**
   * How long past its ttl an entry is kept and may still be served, in ms: when the refresh fails
   * with a database-availability error (stale-if-error), or while another instance holds the
   * fill lock. 0 serves nothing stale.
   * @default 0
   */
  grace?: number;
  /**
   * Longest wait for any one store call, in ms; past it the read goes to the database (and the
   * failure counts toward the cache's breaker).
   * @default 50
   */
  timeout?: number;
  /**
   * Cross-process fill lock; false to let every instance fill a missing entry itself. Within one
   * process, concurrent reads of one entry always share one query.
   * @default true, with the defaults of {@link CacheLockOptions}
   */
  lock?: boolean | CacheLockOptions;
  /** The cache's circuit breaker over its store. */
  breaker?: CacheBreakerOptions;
  /**
   * Largest entry stored, in bytes of encoded JSON; a bigger result is returned but not cached.
   * @default 1048576
   */
  maxEntryBytes?: number;
}

/** The per-call `cache` option of `read()` (`cache: true` uses the pool's settings). */
export interface CacheCallOptions {
  /**
   * How long this entry is fresh, in ms.
   * @default the pool's `cache.ttl`
   */
  ttl?: number;
  /**
   * How long past its ttl this entry may be served, in ms.
   * @default the pool's `cache.grace`
   */
  grace?: number;
  /**
   * Tags of the data the statement reads (tables, or `user:42`). `write(..., { invalidates })`
   * or `cache.invalidate(tags)` with any of them makes this entry unreadable at once.
   * @default []
   */
  tags?: readonly string[];
  /**
   * Names the entry instead of the statement text and parameters (hashed all the same). Needed
   * for a QueryConfig with custom `types`, which is otherwise not cached.
   * @default a hash of the text, the parameters and the rowMode
   */
  key?: string;
  /**
   * Who may share this entry.
   * @default the pool's `cache.scope`
   */
  scope?: CacheScope;
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

/** One call's settings, defaults applied. */
export interface CallSettings {
  ttl: number;
  grace: number;
  tags: readonly string[];
  key: string | undefined;
  scope: CacheScope | undefined;
}

export const CACHE_DEFAULTS = {
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
} as const;

/** Node's timers fire after 1 ms for any delay above this. */
const MAX_TIMER_MS = 2_147_483_647;
/** Tags per call: they are read with one MGET on every cached read. */
const MAX_TAGS = 32;
const MAX_TAG_LENGTH = 256;
const MAX_KEY_LENGTH = 4_096;
const MAX_NAMESPACE_LENGTH = 256;

type Check = (value: unknown) => string | undefined;

const isInt =
  (min: number, max = MAX_TIMER_MS): Check =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? undefined
      : `must be an integer from ${min} to ${max}`;
const isNumber =
  (min: number, max: number): Check =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max
      ? undefined
      : `must be a finite number from ${min} to ${max}`;
const isPrefix: Check = (v) =>
  typeof v === 'string' && v.length >= 1 && v.length <= 128 && !/[{}\s]/.test(v)
    ? undefined
    : 'must be a string of 1 to 128 characters without {, } or whitespace';
const isNamespace: Check = (v) =>
  typeof v === 'string' && v.length >= 1 && v.length <= MAX_NAMESPACE_LENGTH
    ? undefined
    : `must be a non-empty string of at most ${MAX_NAMESPACE_LENGTH} characters`;
const isScope: Check = (v) =>
  typeof v === 'string' || typeof v === 'function'
    ? undefined
    : 'must be a string or a function returning one';
const isKey: Check = (v) =>
  typeof v === 'string' && v.length >= 1 && v.length <= MAX_KEY_LENGTH
    ? undefined
    : `must be a string of 1 to ${MAX_KEY_LENGTH} characters`;

/** Problem with a list of tags, or undefined. */
export const tagsProblem: Check = (v) => {
  if (!Array.isArray(v)) return 'must be an array of tag names';
  if (v.length > MAX_TAGS) return `must hold at most ${MAX_TAGS} tags`;
  const bad = v.findIndex(
    (t) => typeof t !== 'string' || t.length === 0 || t.length > MAX_TAG_LENGTH,
  );
  return bad === -1
    ? undefined
    : `must hold non-empty strings of at most ${MAX_TAG_LENGTH} characters (item ${bad} is not)`;
};

const TOP: Record<string, Check> = {
  prefix: isPrefix,
  namespace: isNamespace,
  scope: isScope,
  ttl: isInt(1),
  jitter: isNumber(0, 1),
  grace: isInt(0),
  timeout: isInt(1, 60_000),
  maxEntryBytes: isInt(1, 512 * 1_048_576),
};
const LOCK: Record<string, Check> = { ttl: isInt(1), wait: isInt(0), poll: isInt(1) };
const BREAKER: Record<string, Check> = {
  consecutiveFailures: isInt(0, Number.MAX_SAFE_INTEGER),
  errorThresholdPercentage: isNumber(0, 100),
  volumeThreshold: isInt(0, Number.MAX_SAFE_INTEGER),
  resetTimeout: isInt(1),
};
const CALL: Record<string, Check> = {
  ttl: isInt(1),
  grace: isInt(0),
  tags: tagsProblem,
  key: isKey,
  scope: isScope,
};
const TOP_KEYS = ['redis', 'store', ...Object.keys(TOP), 'lock', 'breaker'];

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function hasMethods(v: unknown, names: readonly string[]): boolean {
  return (
    typeof v === 'object' &&
    v !== null &&
    names.every((n) => typeof (v as Record<string, unknown>)[n] === 'function')
  );
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined)
    return String(v);
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/** Checks `value` against `schema`; pushes one message per problem; returns the valid keys. */
function checkGroup(
  path: string,
  value: unknown,
  schema: Record<string, Check>,
  problems: string[],
  known: readonly string[] = Object.keys(schema),
): Record<string, unknown> {
  if (!isPlainObject(value)) {
    problems.push(`${path}: must be an object`);
    return {};
  }
  const given: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!known.includes(key)) {
      problems.push(`${path}.${key}: unknown option (known: ${known.join(', ')})`);
      continue;
    }
    const check = schema[key];
    // An option given as undefined keeps its default, as if it were left out.
    if (check === undefined || v === undefined) continue;
    const problem = check(v);
    if (problem) problems.push(`${path}.${key}: ${problem}, got ${describe(v)}`);
    else given[key] = v;
  }
  return given;
}

/**
 * Validates the pool's `cache` option and fills in defaults. Appends one message per problem to
 * `problems`; returns undefined when the option is absent (or false) or has problems.
 */
export function resolveCacheOptions(
  input: unknown,
  problems: string[],
): ResolvedCacheOptions | undefined {
  if (input === undefined || input === false) return undefined;
  const before = problems.length;
  const given = checkGroup('cache', input, TOP, problems, TOP_KEYS);
  if (!isPlainObject(input)) return undefined;

  let store: CacheStore | undefined;
  if (input.redis !== undefined && input.store !== undefined) {
    problems.push('cache: give either `redis` or `store`, not both');
  } else if (input.redis !== undefined) {
    if (hasMethods(input.redis, ['get', 'mget', 'set', 'del', 'eval'])) {
      store = new RedisStore(input.redis as RedisLike);
    } else {
      problems.push(
        'cache.redis: must be an ioredis client (Redis or Cluster) with get, mget, set, del and eval',
      );
    }
  } else if (input.store !== undefined) {
    if (hasMethods(input.store, ['get', 'mget', 'set', 'del', 'incr', 'lock', 'unlock'])) {
      store = input.store as CacheStore;
    } else {
      problems.push(
        'cache.store: must be a CacheStore (get, mget, set, del, incr, lock, unlock), for example new MemoryStore()',
      );
    }
  } else {
    problems.push(
      'cache: needs `redis` (an ioredis client) or `store` (for example new MemoryStore())',
    );
  }

  let lock: Required<CacheLockOptions> | false = { ...CACHE_DEFAULTS.lock };
  if (input.lock === false) lock = false;
  else if (input.lock !== undefined && input.lock !== true && !isPlainObject(input.lock)) {
    problems.push(`cache.lock: must be true, false or an object, got ${describe(input.lock)}`);
  } else if (input.lock !== undefined && input.lock !== true) {
    lock = { ...lock, ...checkGroup('cache.lock', input.lock, LOCK, problems) };
    if (lock.poll > lock.wait && lock.wait > 0) {
      problems.push(
        `cache.lock.poll (${lock.poll}) must not exceed cache.lock.wait (${lock.wait})`,
      );
    }
  }
  const breaker = {
    ...CACHE_DEFAULTS.breaker,
    ...(input.breaker === undefined
      ? {}
      : checkGroup('cache.breaker', input.breaker, BREAKER, problems)),
  };

  if (problems.length > before || store === undefined) return undefined;
  return {
    store,
    prefix: (given.prefix as string | undefined) ?? CACHE_DEFAULTS.prefix,
    namespace: given.namespace as string | undefined,
    scope: given.scope as CacheScope | undefined,
    ttl: (given.ttl as number | undefined) ?? CACHE_DEFAULTS.ttl,
    jitter: (given.jitter as number | undefined) ?? CACHE_DEFAULTS.jitter,
    grace: (given.grace as number | undefined) ?? CACHE_DEFAULTS.grace,
    timeout: (given.timeout as number | undefined) ?? CACHE_DEFAULTS.timeout,
    lock,
    breaker,
    maxEntryBytes: (given.maxEntryBytes as number | undefined) ?? CACHE_DEFAULTS.maxEntryBytes,
  };
}

/**
 * A per-call `cache` option's settings, or a list of problems (each starting with `cache.`).
 * `true` takes the pool's settings as they are (no allocation).
 */
export function resolveCallSettings(
  input: unknown,
  pool: CallSettings,
): CallSettings | { problems: string[] } {
  if (input === true) return pool;
  const problems: string[] = [];
  if (!isPlainObject(input)) return { problems: ['cache: must be true or an object'] };
  const given = checkGroup('cache', input, CALL, problems);
  if (problems.length > 0) return { problems };
  return {
    ttl: (given.ttl as number | undefined) ?? pool.ttl,
    grace: (given.grace as number | undefined) ?? pool.grace,
    tags: (given.tags as readonly string[] | undefined) ?? pool.tags,
    key: given.key as string | undefined,
    scope: 'scope' in given ? (given.scope as CacheScope) : pool.scope,
  };
}

/**
 * Shallow check of `read()`'s `cache` option, for the call-options table: true, false or an
 * object (its keys are checked when the read runs).
 */
export function isCacheCallOption(v: unknown): boolean {
  return typeof v === 'boolean' || isPlainObject(v);
}

/** Check of `write()`'s `invalidates` option, for the call-options table. */
export function isTagList(v: unknown): boolean {
  return tagsProblem(v) === undefined;
}
