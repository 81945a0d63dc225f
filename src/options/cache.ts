/**
 * Validation of the cache's options: the pool-wide `cache` option (resolved with the pool's other
 * options) and the per-call `cache` option of `read()` (resolved when the read runs, against the
 * pool's settings). Same walker, same wording, as every other option.
 */
import { type RedisLike, RedisStore } from '../cache/redis-store.js';
import type { CacheStore } from '../cache/store.js';
import type { CacheLockOptions, CacheScope } from './cache-types.js';
import { DEFAULTS } from './defaults.js';
import type { CallSettings, ResolvedCacheOptions } from './resolved.js';
import {
  type Check,
  checkGroup,
  describe,
  hasMethods,
  isInt,
  isNumber,
  isPlainObject,
  MAX_TIMER_MS,
  OPTION_WORDING,
  type Schema,
  walk,
} from './schema.js';

/** Tags per call: they are read with one MGET on every cached read. */
const MAX_TAGS = 32;
const MAX_TAG_LENGTH = 256;
const MAX_KEY_LENGTH = 4_096;
const MAX_NAMESPACE_LENGTH = 256;

// `{` and `}` would make Redis Cluster hash the prefix instead of the key; whitespace is a typo.
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

/**
 * Shallow check of `read()`'s `cache` option for the call-options table: true, false or an
 * object. Its keys are checked when the read runs, against the pool's cache settings.
 */
export const cacheCallProblem: Check = (v) =>
  typeof v === 'boolean' || isPlainObject(v) ? undefined : 'must be true, false or an object';

// redis, store, lock and breaker need more than one check each; resolveCacheOptions does them.
const TOP: Schema = {
  redis: null,
  store: null,
  prefix: isPrefix,
  namespace: isNamespace,
  scope: isScope,
  ttl: isInt(1, MAX_TIMER_MS),
  jitter: isNumber(0, 1),
  grace: isInt(0, MAX_TIMER_MS),
  timeout: isInt(1, 60_000),
  maxEntryBytes: isInt(1, 512 * 1_048_576),
  lock: null,
  breaker: null,
};
const LOCK: Schema = {
  ttl: isInt(1, MAX_TIMER_MS),
  wait: isInt(0, MAX_TIMER_MS),
  poll: isInt(1, MAX_TIMER_MS),
};
const BREAKER: Schema = {
  consecutiveFailures: isInt(0, Number.MAX_SAFE_INTEGER),
  errorThresholdPercentage: isNumber(0, 100),
  volumeThreshold: isInt(0, Number.MAX_SAFE_INTEGER),
  resetTimeout: isInt(1, MAX_TIMER_MS),
};
const CALL: Schema = {
  ttl: isInt(1, MAX_TIMER_MS),
  grace: isInt(0, MAX_TIMER_MS),
  tags: tagsProblem,
  key: isKey,
  scope: isScope,
};

const REDIS_METHODS = ['get', 'mget', 'set', 'del', 'eval'] as const;
const STORE_METHODS = ['get', 'mget', 'set', 'del', 'incr', 'lock', 'unlock'] as const;

/** The store the cache writes to: the given one, or the given ioredis client wrapped. */
function resolveStore(input: Record<string, unknown>, problems: string[]): CacheStore | undefined {
  const { redis, store } = input;
  if (redis !== undefined && store !== undefined) {
    problems.push('cache: give either `redis` or `store`, not both');
  } else if (redis !== undefined) {
    if (hasMethods(redis, REDIS_METHODS)) return new RedisStore(redis as RedisLike);
    problems.push(
      'cache.redis: must be an ioredis client (Redis or Cluster) with get, mget, set, del and eval',
    );
  } else if (store !== undefined) {
    if (hasMethods(store, STORE_METHODS)) return store as CacheStore;
    problems.push(
      'cache.store: must be a CacheStore (get, mget, set, del, incr, lock, unlock), for example new MemoryStore()',
    );
  } else {
    problems.push(
      'cache: needs `redis` (an ioredis client) or `store` (for example new MemoryStore())',
    );
  }
  return undefined;
}

function resolveLock(value: unknown, problems: string[]): Required<CacheLockOptions> | false {
  if (value === false) return false;
  const lock = { ...DEFAULTS.cache.lock };
  if (value === undefined || value === true) return lock;
  if (!isPlainObject(value)) {
    problems.push(`cache.lock: must be true, false or an object, got ${describe(value)}`);
    return lock;
  }
  Object.assign(lock, checkGroup('cache.lock', value, LOCK, problems));
  if (lock.poll > lock.wait && lock.wait > 0) {
    problems.push(`cache.lock.poll (${lock.poll}) must not exceed cache.lock.wait (${lock.wait})`);
  }
  return lock;
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
  const given = checkGroup('cache', input, TOP, problems);
  if (!isPlainObject(input)) return undefined;
  const store = resolveStore(input, problems);
  const lock = resolveLock(input.lock, problems);
  const breaker = {
    ...DEFAULTS.cache.breaker,
    ...checkGroup('cache.breaker', input.breaker, BREAKER, problems),
  };
  if (problems.length > before || store === undefined) return undefined;
  const d = DEFAULTS.cache;
  return {
    store,
    prefix: (given.prefix as string | undefined) ?? d.prefix,
    namespace: given.namespace as string | undefined,
    scope: given.scope as CacheScope | undefined,
    ttl: (given.ttl as number | undefined) ?? d.ttl,
    jitter: (given.jitter as number | undefined) ?? d.jitter,
    grace: (given.grace as number | undefined) ?? d.grace,
    timeout: (given.timeout as number | undefined) ?? d.timeout,
    lock,
    breaker,
    maxEntryBytes: (given.maxEntryBytes as number | undefined) ?? d.maxEntryBytes,
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
  if (!isPlainObject(input)) return { problems: ['cache: must be true or an object'] };
  const problems: string[] = [];
  const given: Record<string, unknown> = {};
  walk(input, CALL, 'cache', problems, OPTION_WORDING, given);
  if (problems.length > 0) return { problems };
  return {
    ttl: (given.ttl as number | undefined) ?? pool.ttl,
    grace: (given.grace as number | undefined) ?? pool.grace,
    tags: (given.tags as readonly string[] | undefined) ?? pool.tags,
    key: given.key as string | undefined,
    scope: 'scope' in given ? (given.scope as CacheScope) : pool.scope,
  };
}

/** {@link cacheCallProblem} as a yes or no. */
export function isCacheCallOption(v: unknown): boolean {
  return cacheCallProblem(v) === undefined;
}

/** Whether `v` is a valid list of tags (`write()`'s `invalidates`). */
export function isTagList(v: unknown): boolean {
  return tagsProblem(v) === undefined;
}
