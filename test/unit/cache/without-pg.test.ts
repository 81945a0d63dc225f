/**
 * Where pg cannot be loaded from the library (a bundle, say), keys are built by the mirrors, and
 * nothing asks for pg before a key is built.
 */
import { describe, expect, it, vi } from 'vitest';

const looked = vi.hoisted(() => ({ utils: 0, parameters: 0 }));
vi.mock('../../../src/cache/pg-modules.js', () => ({
  pgUtils: () => {
    looked.utils++;
    return null;
  },
  pgConnectionParameters: () => {
    looked.parameters++;
    return null;
  },
}));

const { cacheIdentity, ReadThroughCache, resolveCacheOptions, cacheInfo, MemoryStore } =
  await import('../../../src/cache/index.js');
const { entryHash } = await import('../../../src/cache/keys.js');
const { mirrorPrepareValue } = await import('../../../src/cache/prepare-value.js');
const { mirrorConnectionIdentity } = await import('../../../src/cache/identity.js');
const { pgResult } = await import('./helpers.js');

describe('without pg', () => {
  it('loads the cache without looking for pg', () => {
    expect(looked).toEqual({ utils: 0, parameters: 0 });
  });

  it('builds keys from the mirror, with the same semantics', () => {
    const point = { toPostgres: () => '(1,2)' };
    expect(entryHash('SELECT $1', [point], '', [], undefined)).toBe(
      entryHash('SELECT $1', ['(1,2)'], '', [], undefined),
    );
    expect(entryHash('SELECT $1', [{ big: 1n }], '', [], undefined)).toBeUndefined();
    expect(looked.utils).toBeGreaterThan(0);
    expect(mirrorPrepareValue([1, null])).toBe('{"1",NULL}');
  });

  it('derives the identity from the mirror', () => {
    const pool = { options: { host: 'h', database: 'd', user: 'u' } } as never;
    expect(cacheIdentity([pool])).toMatch(/^@[A-Za-z0-9_-]{22}$/);
    expect(looked.parameters).toBeGreaterThan(0);
    expect(mirrorConnectionIdentity({ host: 'h', database: 'd', user: 'u' }).port).toBe('5432');
  });

  it('caches reads', async () => {
    const problems: string[] = [];
    const options = resolveCacheOptions({ store: new MemoryStore() }, problems);
    const cache = new ReadThroughCache(options!, {
      logger: { error() {}, warn() {}, info() {}, debug() {} },
      onBreaker: () => {},
      identity: '@AAAAAAAAAAAAAAAAAAAAAA',
    });
    const load = vi.fn(async () => pgResult([{ id: 1 }]));
    await cache.read('SELECT $1', [new Date(0)], true, load);
    await cache.whenIdle();
    const hit = await cache.read('SELECT $1', [new Date(0)], true, load);
    expect(cacheInfo(hit)).toMatchObject({ hit: true });
    expect(cacheInfo(hit)?.key).toMatch(/^rp:@AAAAAAAAAAAAAAAAAAAAAA:~:/);
    expect(load).toHaveBeenCalledTimes(1);
    cache.close();
  });
});
