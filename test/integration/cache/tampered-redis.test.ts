/**
 * Tampered and malformed entries written straight into the real Redis: none is served, none
 * changes a prototype, each counts as `corrupt`, and each read goes to the database and writes
 * the entry again.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { cacheInfo } from '../../../src/cache/cache-info.js';
import { decodeEntry, isDecoded } from '../../../src/cache/codec.js';
import { ReadThroughCache } from '../../../src/cache/read-through-cache.js';
import { resolveCacheOptions } from '../../../src/options/cache.js';
import type { QueryResultLike } from '../../../src/pg-like.js';
import { MALFORMED, POLLUTION } from '../../unit/cache/adversarial-entries.js';
import { describeWithRedis, testPrefix, useRedisClients } from './redis-env.js';

const prefix = testPrefix();
const redis = useRedisClients(prefix);
const SQL = 'SELECT id, name FROM users WHERE id = $1';

describeWithRedis('tampered entries in Redis', () => {
  let client: Redis;
  let cache: ReadThroughCache;
  beforeAll(async () => {
    client = await redis.open();
    const problems: string[] = [];
    const options = resolveCacheOptions(
      { redis: client, prefix, jitter: 0, timeout: 1_000 },
      problems,
    );
    expect(problems).toEqual([]);
    cache = new ReadThroughCache(options!, {
      logger: { error() {}, warn() {}, info() {}, debug() {} },
      onBreaker: () => {},
      identity: '@AAAAAAAAAAAAAAAAAAAAAA',
    });
  });
  afterAll(async () => {
    await cache?.whenIdle();
    cache?.close();
    delete (Object.prototype as Record<string, unknown>).polluted;
  });

  const cases = [...POLLUTION, ...MALFORMED];
  cases.forEach(([name, tamper], id) => {
    it(`refetches over ${name}`, async () => {
      const fromDb = (): QueryResultLike => ({
        command: 'SELECT',
        rowCount: 1,
        rows: [{ id, name: 'Ann', seen: new Date(id) }],
        fields: [{ name: 'id' }, { name: 'name' }, { name: 'seen' }],
      });
      const load = vi.fn(async () => fromDb());
      const first = await cache.read(SQL, [id], true, load);
      await cache.whenIdle();
      const key = cacheInfo(first)!.key;
      await client.set(key, tamper(key), 'PX', 60_000);
      const before = cache.stats();

      const second = await cache.read(SQL, [id], true, load);
      expect(load).toHaveBeenCalledTimes(2);
      expect(second).toEqual(fromDb());
      expect(cacheInfo(second)).toMatchObject({ hit: false, bypassed: false });
      const after = cache.stats();
      expect(after.corrupt - before.corrupt).toBe(1);
      expect(after.misses - before.misses).toBe(1);
      expect(after.errors).toBe(before.errors);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();

      await cache.whenIdle();
      const stored = await client.get(key);
      expect(isDecoded(decodeEntry(stored!, key))).toBe(true);
      expect(cacheInfo(await cache.read(SQL, [id], true, load))?.hit).toBe(true);
    });
  });
});
