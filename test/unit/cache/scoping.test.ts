/**
 * Who shares an entry: keys carry the endpoints' identity (or the `namespace` option), and the
 * parameters as pg sends them. Two pools on different databases over one store and one prefix
 * never serve each other's rows; two parameter values pg sends differently never share a key;
 * parameters pg cannot send skip the cache and fail as pg fails.
 */
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cacheInfo } from '../../../src/cache/cache-info.js';
import { cacheIdentity } from '../../../src/cache/identity.js';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import { ReadThroughCache } from '../../../src/cache/read-through-cache.js';
import { resolveCacheOptions } from '../../../src/options/cache.js';
import type { CacheOptions } from '../../../src/options/cache-types.js';
import type { PgPoolLike, QueryResultLike } from '../../../src/pg-like.js';
import { FlakyStore, pgResult } from './helpers.js';

const SQL = 'SELECT name FROM settings WHERE id = $1';
const caches: ReadThroughCache[] = [];
const pools: pg.Pool[] = [];

afterEach(async () => {
  for (const c of caches.splice(0)) c.close();
  for (const p of pools.splice(0)) await p.end();
});

function poolOn(database: string, host = '127.0.0.1'): PgPoolLike {
  const pool = new pg.Pool({ host, port: 5432, database, user: 'app', password: 'secret' });
  pools.push(pool);
  return pool as unknown as PgPoolLike;
}

function cacheOn(
  store: FlakyStore | MemoryStore,
  identity: string | undefined,
  options: Partial<CacheOptions> = {},
) {
  const problems: string[] = [];
  const resolved = resolveCacheOptions({ store, jitter: 0, ...options }, problems);
  expect(problems).toEqual([]);
  const cache = new ReadThroughCache(resolved!, {
    logger: { error() {}, warn() {}, info() {}, debug() {} },
    onBreaker: () => {},
    identity,
  });
  caches.push(cache);
  return cache;
}

const answering = (name: string) =>
  vi.fn(async (): Promise<QueryResultLike> => pgResult([{ name }]));

async function readTwice(a: ReadThroughCache, b: ReadThroughCache) {
  const loadA = answering('from A');
  const loadB = answering('from B');
  const ra = await a.read(SQL, [1], true, loadA);
  await a.whenIdle();
  const rb = await b.read(SQL, [1], true, loadB);
  await b.whenIdle();
  return { ra, rb, loadA, loadB };
}

describe('entries are scoped by the endpoints’ identity', () => {
  it('keeps pools on different databases apart, over one store and one prefix', async () => {
    const store = new MemoryStore();
    const a = cacheOn(store, cacheIdentity([poolOn('shop_eu')]));
    const b = cacheOn(store, cacheIdentity([poolOn('shop_us')]));
    const { rb, loadB } = await readTwice(a, b);
    expect(loadB).toHaveBeenCalledTimes(1);
    expect(rb.rows[0]!.name).toBe('from B');
    expect(cacheInfo(rb)!.key).not.toContain('shop');
    expect(cacheInfo(rb)!.key).not.toContain('secret');
  });

  it('keeps apart the same database on another server set', async () => {
    const store = new MemoryStore();
    const primary = poolOn('shop');
    const a = cacheOn(store, cacheIdentity([primary]));
    const b = cacheOn(store, cacheIdentity([poolOn('shop', '10.0.0.9')]));
    const { loadB } = await readTwice(a, b);
    expect(loadB).toHaveBeenCalledTimes(1);
  });

  it('shares entries between pools with one identity', async () => {
    const store = new MemoryStore();
    const a = cacheOn(store, cacheIdentity([poolOn('shop')]));
    const b = cacheOn(store, cacheIdentity([poolOn('shop')]));
    const { rb, loadB } = await readTwice(a, b);
    expect(loadB).not.toHaveBeenCalled();
    expect(rb.rows[0]!.name).toBe('from A');
  });

  it('lets the namespace option replace the identity', async () => {
    const store = new MemoryStore();
    const a = cacheOn(store, cacheIdentity([poolOn('shop_eu')]), { namespace: 'shop' });
    const b = cacheOn(store, cacheIdentity([poolOn('shop_us')]), { namespace: 'shop' });
    const { ra, loadB } = await readTwice(a, b);
    expect(loadB).not.toHaveBeenCalled();
    expect(cacheInfo(ra)!.key).toMatch(/^rp:shop:~:/);

    const c = cacheOn(store, cacheIdentity([poolOn('shop_eu')]), { namespace: 'other' });
    const load = answering('from C');
    await c.read(SQL, [1], true, load);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('puts the identity after the prefix and before the scope', async () => {
    const identity = cacheIdentity([poolOn('shop')]);
    const cache = cacheOn(new MemoryStore(), identity, { scope: 'tenant-1' });
    const r = await cache.read(SQL, [1], true, answering('x'));
    expect(cacheInfo(r)!.key).toMatch(new RegExp(`^rp:${identity}:tenant-1:[A-Za-z0-9_-]{43}$`));
    const bare = cacheOn(new MemoryStore(), undefined);
    expect(cacheInfo(await bare.read(SQL, [1], true, answering('x')))!.key).toMatch(/^rp:~:~:/);
  });

  it('keeps tag versions shared across identities, so an invalidation never misses a reader', async () => {
    const store = new MemoryStore();
    const reader = cacheOn(store, cacheIdentity([poolOn('shop'), poolOn('shop', '10.0.0.9')]));
    const writer = cacheOn(store, cacheIdentity([poolOn('shop')]));
    const load = answering('v1');
    await reader.read(SQL, [1], { tags: ['settings'] }, load);
    await reader.whenIdle();
    await writer.invalidate(['settings']);
    await reader.read(SQL, [1], { tags: ['settings'] }, load);
    expect(load).toHaveBeenCalledTimes(2);
  });
});

describe('entries are keyed by the parameters as pg sends them', () => {
  class Temperature {
    constructor(
      readonly value: number,
      unit: 'C' | 'F',
    ) {
      // Not enumerable: JSON.stringify shows {"value":20} for both units.
      Object.defineProperty(this, 'unit', { value: unit, enumerable: false });
    }
    toPostgres(this: Temperature & { unit: string }) {
      return `${this.value}${this.unit}`;
    }
  }

  it('never answers a value with the rows of another that pg sends differently', async () => {
    const cache = cacheOn(new MemoryStore(), '@AAAAAAAAAAAAAAAAAAAAAA');
    const celsius = await cache.read(SQL, [new Temperature(20, 'C')], true, answering('20C'));
    await cache.whenIdle();
    const fahrenheit = await cache.read(SQL, [new Temperature(20, 'F')], true, answering('20F'));
    expect(fahrenheit.rows[0]!.name).toBe('20F');
    expect(cacheInfo(fahrenheit)!.key).not.toBe(cacheInfo(celsius)!.key);
  });

  it('sends a read whose parameters pg cannot serialise to the database, untouched', async () => {
    const store = new FlakyStore();
    const cache = cacheOn(store, '@AAAAAAAAAAAAAAAAAAAAAA');
    const pgError = new TypeError('Do not know how to serialize a BigInt');
    const load = vi.fn(() => Promise.reject(pgError));
    await expect(cache.read(SQL, [{ n: 1n }], true, load)).rejects.toBe(pgError);
    await expect(cache.read(SQL, [{ n: 1n }], { key: 'mine' }, load)).rejects.toBe(pgError);
    expect(load).toHaveBeenCalledTimes(2);
    expect(store.total).toBe(0);
    expect(cache.stats()).toMatchObject({ bypasses: 2, misses: 0 });
  });
});
