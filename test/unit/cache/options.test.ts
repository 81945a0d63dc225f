import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import { RedisStore } from '../../../src/cache/redis-store.js';
import {
  isCacheCallOption,
  isTagList,
  resolveCacheOptions,
  resolveCallSettings,
} from '../../../src/options/cache.js';
import { CACHE_DEFAULTS } from '../../../src/options/defaults.js';

const fakeRedis = {
  get: async () => null,
  mget: async () => [],
  set: async () => 'OK',
  del: async () => 0,
  eval: async () => 0,
};

function resolve(input: unknown) {
  const problems: string[] = [];
  const resolved = resolveCacheOptions(input, problems);
  return { problems, resolved };
}

describe('resolveCacheOptions', () => {
  it('is undefined, without problems, when the option is absent or false', () => {
    expect(resolve(undefined)).toEqual({ problems: [], resolved: undefined });
    expect(resolve(false)).toEqual({ problems: [], resolved: undefined });
  });

  it('fills in every default', () => {
    const store = new MemoryStore();
    const { problems, resolved } = resolve({ store });
    expect(problems).toEqual([]);
    expect(resolved).toEqual({
      store,
      prefix: 'rp:',
      scope: undefined,
      ttl: 30_000,
      jitter: 0.1,
      grace: 0,
      timeout: 50,
      lock: { ttl: 5_000, wait: 250, poll: 50 },
      breaker: {
        consecutiveFailures: 3,
        errorThresholdPercentage: 50,
        volumeThreshold: 10,
        resetTimeout: 2_000,
      },
      maxEntryBytes: 1_048_576,
    });
    expect(CACHE_DEFAULTS.ttl).toBe(30_000);
  });

  it('wraps an ioredis-like client in a RedisStore', () => {
    const { resolved } = resolve({ redis: fakeRedis, lock: false, grace: 0, jitter: 0 });
    expect(resolved?.store).toBeInstanceOf(RedisStore);
    expect(resolved?.lock).toBe(false);
    expect(resolved?.jitter).toBe(0);
  });

  it('keeps defaults for options given as undefined', () => {
    const { resolved } = resolve({ store: new MemoryStore(), ttl: undefined });
    expect(resolved?.ttl).toBe(30_000);
  });

  it('lists every problem, naming each option', () => {
    const { problems, resolved } = resolve({
      redis: fakeRedis,
      store: new MemoryStore(),
      ttl: 0,
      jitter: 2,
      grace: -1,
      timeout: 1.5,
      prefix: 'a{b}',
      scope: 42,
      maxEntryBytes: 0,
      lock: { ttl: 0, wait: 10, poll: 20, bogus: 1 },
      breaker: { resetTimeout: 0, consecutiveFailures: -1, errorThresholdPercentage: 101, x: 1 },
      ttL: 5,
    });
    expect(resolved).toBeUndefined();
    expect(problems).toEqual([
      'cache.ttl: must be an integer from 1 to 2147483647, got 0',
      'cache.jitter: must be a finite number from 0 to 1, got 2',
      'cache.grace: must be an integer from 0 to 2147483647, got -1',
      'cache.timeout: must be an integer from 1 to 60000, got 1.5',
      "cache.prefix: must be a string of 1 to 128 characters without {, } or whitespace, got 'a{b}'",
      'cache.scope: must be a string or a function returning one, got 42',
      'cache.maxEntryBytes: must be an integer from 1 to 536870912, got 0',
      expect.stringMatching(/^cache\.ttL: unknown option \(known: redis, store, prefix, /),
      'cache: give either `redis` or `store`, not both',
      'cache.lock.ttl: must be an integer from 1 to 2147483647, got 0',
      expect.stringMatching(/^cache\.lock\.bogus: unknown option \(known: ttl, wait, poll\)/),
      'cache.lock.poll (20) must not exceed cache.lock.wait (10)',
      'cache.breaker.resetTimeout: must be an integer from 1 to 2147483647, got 0',
      'cache.breaker.consecutiveFailures: must be an integer from 0 to 9007199254740991, got -1',
      'cache.breaker.errorThresholdPercentage: must be a finite number from 0 to 100, got 101',
      expect.stringMatching(/^cache\.breaker\.x: unknown option/),
    ]);
  });

  it('asks for a store, and checks what it is given', () => {
    expect(resolve({}).problems).toEqual([
      'cache: needs `redis` (an ioredis client) or `store` (for example new MemoryStore())',
    ]);
    expect(resolve({ redis: { get() {} } }).problems).toEqual([
      'cache.redis: must be an ioredis client (Redis or Cluster) with get, mget, set, del and eval',
    ]);
    expect(resolve({ store: {} }).problems[0]).toMatch(/^cache\.store: must be a CacheStore/);
    expect(resolve('yes').problems).toEqual(['cache: must be an object']);
    expect(resolve({ store: new MemoryStore(), lock: 'on' }).problems).toEqual([
      "cache.lock: must be true, false or an object, got 'on'",
    ]);
  });
});

describe('per-call cache options', () => {
  const pool = { ttl: 1_000, grace: 0, tags: [], key: undefined, scope: 'pool' };

  it('takes the pool settings for true, and overrides them per key', () => {
    expect(resolveCallSettings(true, pool)).toBe(pool);
    expect(resolveCallSettings({ ttl: 5, tags: ['t'], key: 'k', scope: 's' }, pool)).toEqual({
      ttl: 5,
      grace: 0,
      tags: ['t'],
      key: 'k',
      scope: 's',
    });
  });

  it('reports bad and unknown keys', () => {
    expect(resolveCallSettings({ ttl: -1, tags: ['', 3], key: '', tag: [] }, pool)).toEqual({
      problems: [
        'cache.ttl: must be an integer from 1 to 2147483647, got -1',
        'cache.tags: must hold non-empty strings of at most 256 characters (item 0 is not), got an array',
        "cache.key: must be a string of 1 to 4096 characters, got ''",
        'cache.tag: unknown option (known: ttl, grace, tags, key, scope)',
      ],
    });
    expect(resolveCallSettings(1, pool)).toEqual({
      problems: ['cache: must be true or an object'],
    });
  });

  it('has shallow checks for the call-options tables', () => {
    expect(isCacheCallOption(true)).toBe(true);
    expect(isCacheCallOption(false)).toBe(true);
    expect(isCacheCallOption({ ttl: 1 })).toBe(true);
    expect(isCacheCallOption('yes')).toBe(false);
    expect(isTagList(['users'])).toBe(true);
    expect(isTagList('users')).toBe(false);
    expect(isTagList([''])).toBe(false);
  });
});
