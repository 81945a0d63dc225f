/**
 * The cache over a store holding tampered or malformed entries (written straight into the
 * MemoryStore): such an entry is never served, never changes a prototype, counts as `corrupt`,
 * and is a miss: the rows come from the database and the entry is written again.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cacheInfo } from '../../../src/cache/cache-info.js';
import { decodeEntry, isDecoded } from '../../../src/cache/codec.js';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import { ReadThroughCache } from '../../../src/cache/read-through-cache.js';
import { resolveCacheOptions } from '../../../src/options/cache.js';
import type { QueryResultLike } from '../../../src/pg-like.js';
import { MALFORMED, POLLUTION } from './adversarial-entries.js';
import { pgResult, recordingLogger } from './helpers.js';

const SQL = 'SELECT id, name FROM users WHERE id = $1';
const caches: ReadThroughCache[] = [];

afterEach(() => {
  for (const c of caches.splice(0)) c.close();
  delete (Object.prototype as Record<string, unknown>).polluted;
});

function setup() {
  const store = new MemoryStore();
  const problems: string[] = [];
  const options = resolveCacheOptions({ store, jitter: 0, grace: 60_000 }, problems);
  expect(problems).toEqual([]);
  const { logger, lines } = recordingLogger();
  const cache = new ReadThroughCache(options!, {
    logger,
    onBreaker: () => {},
    identity: '@AAAAAAAAAAAAAAAAAAAAAA',
  });
  caches.push(cache);
  return { cache, store, lines };
}

const fromDb = () => pgResult([{ id: 1, name: 'Ann' }]);

describe('tampered entries in the store', () => {
  for (const [name, tamper] of [...POLLUTION, ...MALFORMED]) {
    it(`refetch over ${name}`, async () => {
      const { cache, store } = setup();
      const load = vi.fn(async (): Promise<QueryResultLike> => fromDb());
      const first = await cache.read(SQL, [1], true, load);
      await cache.whenIdle();
      const key = cacheInfo(first)!.key;
      await store.set(key, tamper(key), { px: 60_000 });

      const second = await cache.read(SQL, [1], true, load);
      expect(load).toHaveBeenCalledTimes(2);
      expect(second).toEqual(fromDb());
      expect(cacheInfo(second)).toMatchObject({ hit: false, stale: false, bypassed: false });
      expect(cache.stats()).toMatchObject({ corrupt: 1, misses: 2, hits: 0, errors: 0 });
      expect(cache.stats().breaker).toBe('closed');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();

      // Written again, whole: the next read is a hit.
      await cache.whenIdle();
      const stored = await store.get(key);
      expect(isDecoded(decodeEntry(stored!, key))).toBe(true);
      const third = await cache.read(SQL, [1], true, load);
      expect(cacheInfo(third)?.hit).toBe(true);
      expect(third).toEqual(fromDb());
      expect(load).toHaveBeenCalledTimes(2);
    });
  }

  it('warns without the key, at most every 10 s', async () => {
    const { cache, store, lines } = setup();
    const load = vi.fn(async (): Promise<QueryResultLike> => fromDb());
    for (const id of [1, 2, 3]) {
      const r = await cache.read(SQL, [id], true, load);
      await cache.whenIdle();
      await store.set(cacheInfo(r)!.key, '{"v":1', { px: 60_000 });
      await cache.read(SQL, [id], true, load);
    }
    expect(cache.stats().corrupt).toBe(3);
    const warned = lines.filter((l) => l.msg?.includes('failed validation'));
    expect(warned).toHaveLength(1);
    expect(JSON.stringify(warned[0]!.obj)).not.toContain('rp:');
  });

  it('is never served stale either', async () => {
    const { cache, store } = setup();
    const load = vi.fn(async (): Promise<QueryResultLike> => fromDb());
    const first = await cache.read(SQL, [1], true, load);
    await cache.whenIdle();
    const key = cacheInfo(first)!.key;
    // Past its ttl but within grace, and malformed: a failing refresh must not fall back on it.
    const stale = JSON.parse((await store.get(key))!);
    stale.f = Date.now() - 1;
    stale.p.rowCount = 'many';
    await store.set(key, JSON.stringify(stale), { px: 60_000 });
    const down = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    await expect(cache.read(SQL, [1], true, () => Promise.reject(down))).rejects.toBe(down);
    expect(cache.stats().corrupt).toBe(1);
  });
});
