/**
 * The public option types of the read-through cache: the pool-wide `cache` option and the
 * per-call `cache` option of `read()`. They ship in the .d.ts as written, so each option carries
 * its JSDoc and `@default` (the values themselves live in defaults.ts).
 */
import type { RedisLike } from '../cache/redis-store.js';
import type { CacheStore } from '../cache/store.js';

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
