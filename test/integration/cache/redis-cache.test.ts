/**
 * ReadThroughCache over the real Redis: real expiry, invalidation seen by another instance on
 * another connection, and the cross-process fill lock. load() is a counted stand-in for the
 * database (the PostgreSQL round trip has its own file).
 */
import type { Redis } from 'ioredis';
import { afterEach, expect, it, vi } from 'vitest';
import { cacheInfo } from '../../../src/cache/cache-info.js';
import { ReadThroughCache } from '../../../src/cache/read-through-cache.js';
import { resolveCacheOptions } from '../../../src/options/cache.js';
import type { CacheOptions } from '../../../src/options/cache-types.js';
import type { QueryResultLike } from '../../../src/pg-like.js';
import type { BreakerState } from '../../../src/telemetry/events.js';
import { until } from '../../support/wait.js';
import { describeWithRedis, testPrefix, useRedisClients } from './redis-env.js';

const prefix = testPrefix();
const redis = useRedisClients(prefix);
const caches: ReadThroughCache[] = [];
const SQL = 'SELECT id, name, seen_at FROM users WHERE id = $1';
const silent = { error() {}, warn() {}, info() {}, debug() {} };

afterEach(async () => {
  for (const cache of caches.splice(0)) {
    await cache.whenIdle();
    cache.close();
  }
});

function newCache(client: Redis, options: Partial<CacheOptions> = {}) {
  const problems: string[] = [];
  // A generous store timeout: these tests are about behaviour, and a busy machine must not turn
  // a slow reply into a bypass (the black-hole test covers timeouts).
  const resolved = resolveCacheOptions(
    { redis: client, prefix, jitter: 0, timeout: 1_000, ...options },
    problems,
  );
  expect(problems).toEqual([]);
  const changes: BreakerState[] = [];
  const cache = new ReadThroughCache(resolved!, {
    logger: silent,
    onBreaker: (state) => changes.push(state),
  });
  caches.push(cache);
  return { cache, changes };
}

/** A counted load() answering after `ms`, with a Date and a Buffer in its row. */
function loader(ms = 0, name = 'Ann') {
  return vi.fn(
    () =>
      new Promise<QueryResultLike>((resolve) =>
        setTimeout(
          () =>
            resolve({
              command: 'SELECT',
              rowCount: 1,
              rows: [
                {
                  id: 1,
                  name,
                  seen_at: new Date('2024-05-01T10:00:00.123Z'),
                  avatar: Buffer.from([1, 2, 3]),
                },
              ],
              fields: [
                { name: 'id', dataTypeID: 23 },
                { name: 'name', dataTypeID: 25 },
                { name: 'seen_at', dataTypeID: 1184 },
                { name: 'avatar', dataTypeID: 17 },
              ],
            }),
          ms,
        ),
      ),
  );
}

describeWithRedis('ReadThroughCache over real Redis', () => {
  it('stores an entry, serves it, and lets Redis expire it after ttl + grace', async () => {
    const client = await redis.open();
    const { cache } = newCache(client, { ttl: 300, grace: 200 });
    const load = loader();
    const first = await cache.read(SQL, [1], true, load);
    await cache.whenIdle();
    const key = cacheInfo(first)!.key;
    expect(key.startsWith(prefix)).toBe(true);

    const pttl = await client.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(500);
    // The lock was released once the entry was written.
    expect(await client.exists(`${key}:lock`)).toBe(0);

    const hit = await cache.read(SQL, [1], true, load);
    expect(load).toHaveBeenCalledTimes(1);
    expect(hit).toEqual(first);
    expect(cacheInfo(hit)).toMatchObject({ hit: true, stale: false });

    await until('Redis expired the entry', async () => (await client.exists(key)) === 0, {
      timeoutMs: 3_000,
      intervalMs: 50,
    });
    const again = await cache.read(SQL, [1], true, load);
    expect(load).toHaveBeenCalledTimes(2);
    expect(cacheInfo(again)).toMatchObject({ hit: false });
  });

  it('marks entries past ttl as stale and serves them when the database is unavailable', async () => {
    const client = await redis.open();
    const { cache } = newCache(client, { ttl: 100, grace: 5_000 });
    await cache.read(SQL, [2], true, loader());
    await cache.whenIdle();
    await new Promise((r) => setTimeout(r, 150));
    const down = vi.fn(() =>
      Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    );
    const stale = await cache.read(SQL, [2], true, down);
    expect(down).toHaveBeenCalledTimes(1);
    expect(cacheInfo(stale)).toMatchObject({ hit: true, stale: true });
    expect(stale.rows[0]).toMatchObject({ id: 1, name: 'Ann' });
  });

  it('sees an invalidation made by another instance on another connection at once', async () => {
    const a = newCache(await redis.open()).cache;
    const b = newCache(await redis.open()).cache;
    const load = loader();
    await a.read(SQL, [3], { tags: ['users'] }, load);
    await a.whenIdle();
    expect(cacheInfo(await b.read(SQL, [3], { tags: ['users'] }, load))?.hit).toBe(true);

    await a.invalidate(['users']);
    const fresh = loader(0, 'Bob');
    const after = await b.read(SQL, [3], { tags: ['users'] }, fresh);
    expect(fresh).toHaveBeenCalledTimes(1);
    expect(after.rows[0]!.name).toBe('Bob');
    expect(cacheInfo(after)?.hit).toBe(false);
    expect(a.stats().invalidations).toBe(1);
  });

  it('keeps tag versions in one hash slot and never below the clock after a flush', async () => {
    const client = await redis.open();
    const { cache } = newCache(client);
    await cache.read(SQL, [4], { tags: ['orders', 'users'] }, loader());
    const versionKeys = [`${prefix}{tags}:orders`, `${prefix}{tags}:users`];
    const versions = await client.mget(versionKeys);
    for (const v of versions)
      expect(Number(v)).toBeGreaterThanOrEqual((Date.now() - 60_000) * 1_000);
    await client.del(versionKeys[1]!);
    const before = Date.now() * 1_000;
    await cache.invalidate(['users']);
    expect(Number(await client.get(versionKeys[1]!))).toBeGreaterThanOrEqual(before);
  });

  it('runs one query for 50 concurrent misses on each of two instances (fill lock)', async () => {
    const a = newCache(await redis.open(), { lock: { wait: 3_000, poll: 20 } }).cache;
    const b = newCache(await redis.open(), { lock: { wait: 3_000, poll: 20 } }).cache;
    const load = loader(150);
    const reads = [
      ...Array.from({ length: 50 }, () => a.read(SQL, [5], true, load)),
      ...Array.from({ length: 50 }, () => b.read(SQL, [5], true, load)),
    ];
    const results = await Promise.all(reads);
    // One instance took the lock and ran the query once (its 49 other reads shared it); the
    // other polled Redis until the entry appeared.
    expect(load).toHaveBeenCalledTimes(1);
    for (const r of results) expect(r.rows).toEqual(results[0]!.rows);
    const stats = [a.stats(), b.stats()];
    expect(stats.map((s) => s.coalesced)).toEqual([49, 49]);
    expect(stats.map((s) => s.misses + s.hits).sort()).toEqual([50, 50]);
    expect(stats.map((s) => s.hits).sort((x, y) => x - y)).toEqual([0, 50]);
  });

  it('keeps scopes apart in Redis', async () => {
    const client = await redis.open();
    const { cache } = newCache(client);
    const load = loader();
    const acme = await cache.read(SQL, [6], { scope: 'acme' }, load);
    await cache.whenIdle();
    const globex = await cache.read(SQL, [6], { scope: 'globex' }, load);
    expect(load).toHaveBeenCalledTimes(2);
    expect(cacheInfo(acme)!.key).toContain(':acme:');
    expect(cacheInfo(globex)!.key).toContain(':globex:');
  });
});
