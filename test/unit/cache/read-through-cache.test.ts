import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cacheInfo } from '../../../src/cache/cache-info.js';
import { encodeEntry } from '../../../src/cache/codec.js';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import { ReadThroughCache } from '../../../src/cache/read-through-cache.js';
import { AbortedError, ConfigError } from '../../../src/errors.js';
import { resolveCacheOptions } from '../../../src/options/cache.js';
import type { CacheOptions } from '../../../src/options/cache-types.js';
import type { QueryResultLike } from '../../../src/pg-like.js';
import type { BreakerState } from '../../../src/telemetry/events.js';
import { connectionError, FlakyStore, pgResult, recordingLogger, sqlError } from './helpers.js';

const SQL = 'SELECT id, name, created_at FROM users WHERE id = $1';
const caches: ReadThroughCache[] = [];

function setup(overrides: Partial<CacheOptions> = {}, store = new FlakyStore()) {
  const problems: string[] = [];
  const options = resolveCacheOptions({ store, jitter: 0, ...overrides }, problems);
  expect(problems).toEqual([]);
  const changes: Array<[BreakerState, BreakerState]> = [];
  const { logger, lines } = recordingLogger();
  const cache = new ReadThroughCache(options!, {
    logger,
    onBreaker: (state, previous) => changes.push([state, previous]),
  });
  caches.push(cache);
  return { cache, store, changes, lines };
}

/** A load() that counts its calls and answers `result` (a fresh copy each time) after `ms`. */
function loader(ms = 0, rows = [{ id: 1, name: 'Ann', created_at: new Date(1_000) }]) {
  const load = vi.fn(
    () =>
      new Promise<QueryResultLike>((resolve) =>
        setTimeout(() => resolve(pgResult(rows.map((r) => ({ ...r })))), ms),
      ),
  );
  return load;
}

const failing = (err: Error) => vi.fn(() => Promise.reject(err));

/** Runs `read` while advancing fake time until it settles. */
async function settle<T>(work: Promise<T>, ms = 1_000): Promise<T> {
  let done = false;
  const tracked = work.finally(() => {
    done = true;
  });
  for (let t = 0; t < ms && !done; t += 5) await vi.advanceTimersByTimeAsync(5);
  return tracked;
}

describe('ReadThroughCache', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    for (const c of caches.splice(0)) c.close();
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  describe('hits and misses', () => {
    it('runs the query on a miss, then serves the entry', async () => {
      const { cache } = setup();
      const load = loader();
      const first = await settle(cache.read(SQL, [1], true, load));
      expect(load).toHaveBeenCalledTimes(1);
      expect(cacheInfo(first)).toMatchObject({ hit: false, stale: false, bypassed: false });
      await cache.whenIdle();

      const second = await settle(cache.read(SQL, [1], true, load));
      expect(load).toHaveBeenCalledTimes(1);
      expect(second).toEqual(first);
      expect(second).not.toBe(first);
      expect(second.rows[0]!.created_at).toBeInstanceOf(Date);
      expect(cacheInfo(second)).toEqual({
        hit: true,
        stale: false,
        key: cacheInfo(first)!.key,
        bypassed: false,
      });
      expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, fills: 1, errors: 0 });
    });

    it('gives every hit its own copy, so a caller mutating rows cannot poison the cache', async () => {
      const { cache } = setup();
      const load = loader();
      await settle(cache.read(SQL, [1], true, load));
      await cache.whenIdle();
      const a = await settle(cache.read(SQL, [1], true, load));
      a.rows[0]!.name = 'changed';
      const b = await settle(cache.read(SQL, [1], true, load));
      expect(b.rows[0]!.name).toBe('Ann');
      expect(cacheInfo(a)).not.toBe(undefined);
    });

    it('keeps different parameters apart', async () => {
      const { cache } = setup();
      const load = loader();
      await settle(cache.read(SQL, [1], true, load));
      await settle(cache.read(SQL, [2], true, load));
      // A Buffer is sent in binary format: another query than the text '1'.
      await settle(cache.read(SQL, [Buffer.from('1')], true, load));
      expect(load).toHaveBeenCalledTimes(3);
      // 1 and '1' are the same text on the wire: one entry (scoping.test.ts has more).
      await cache.whenIdle();
      await settle(cache.read(SQL, ['1'], true, load));
      expect(load).toHaveBeenCalledTimes(3);
    });

    it('refreshes after the ttl', async () => {
      const { cache } = setup({ ttl: 1_000 });
      const load = loader();
      await settle(cache.read(SQL, [1], true, load));
      await cache.whenIdle();
      await vi.advanceTimersByTimeAsync(990);
      await cache.read(SQL, [1], true, load);
      expect(load).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(10);
      await settle(cache.read(SQL, [1], true, load));
      expect(load).toHaveBeenCalledTimes(2);
    });

    it('takes a per-call ttl', async () => {
      const { cache, store } = setup({ ttl: 60_000 });
      await settle(cache.read(SQL, [1], { ttl: 100 }, loader()));
      await cache.whenIdle();
      expect(store.calls.set).toBe(1);
      const load = loader();
      await vi.advanceTimersByTimeAsync(100);
      await settle(cache.read(SQL, [1], { ttl: 100 }, load));
      expect(load).toHaveBeenCalledTimes(1);
    });

    it('spreads ttls by the jitter, within its bounds', async () => {
      const store = new FlakyStore();
      const px: number[] = [];
      const set = store.set.bind(store);
      store.set = (key, value, options) => {
        if (options.px !== undefined) px.push(options.px);
        return set(key, value, options);
      };
      const { cache } = setup({ ttl: 10_000, jitter: 0.1, lock: false }, store);
      const random = vi.spyOn(Math, 'random');
      for (const [i, r] of [0, 0.5, 0.999_999].entries()) {
        random.mockReturnValueOnce(r);
        await settle(cache.read(SQL, [i], true, loader()));
      }
      await cache.whenIdle();
      expect(px).toEqual([9_000, 10_000, 11_000]);
    });

    it('does not store what is not a single row set, nor an entry over maxEntryBytes', async () => {
      const { cache, store } = setup({ maxEntryBytes: 200 });
      const multi = vi.fn(async () => [pgResult([{ a: 1 }]), pgResult([{ b: 2 }])]);
      const r = await settle(cache.read('SELECT 1; SELECT 2', undefined, true, multi as never));
      expect(Array.isArray(r)).toBe(true);
      const big = loader(0, [{ id: 1, name: 'x'.repeat(500), created_at: new Date(0) }]);
      await settle(cache.read(SQL, [1], true, big));
      await cache.whenIdle();
      expect(store.calls.set).toBeUndefined();
      expect(cache.stats().oversize).toBe(1);
    });

    it('skips QueryConfigs with custom type parsers unless the call names the entry', async () => {
      const { cache, store } = setup();
      const config = { text: SQL, values: [1], types: { getTypeParser: () => String } };
      const load = loader();
      const r = await settle(cache.read(config, undefined, true, load));
      expect(cacheInfo(r)?.bypassed).toBe(true);
      expect(store.total).toBe(0);
      await settle(cache.read(config, undefined, { key: 'users-as-text:1' }, load));
      await cache.whenIdle();
      const hit = await settle(cache.read(config, undefined, { key: 'users-as-text:1' }, load));
      expect(cacheInfo(hit)?.hit).toBe(true);
    });

    it('rejects bad per-call options with ConfigError, before any work', async () => {
      const { cache, store } = setup();
      const load = loader();
      const err = await cache.read(SQL, [1], { ttl: 0, tagz: [] } as never, load).catch((e) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.problems).toEqual([
        'read(): cache.ttl: must be an integer from 1 to 2147483647, got 0',
        'read(): cache.tagz: unknown option (known: ttl, grace, tags, key, scope)',
      ]);
      expect(load).not.toHaveBeenCalled();
      expect(store.total).toBe(0);
    });

    it('passes load() errors through unchanged', async () => {
      const { cache } = setup();
      const err = sqlError();
      await expect(cache.read(SQL, [1], true, failing(err))).rejects.toBe(err);
    });
  });

  describe('keys', () => {
    it('never show parameter values', async () => {
      const { cache, store } = setup();
      const r = await settle(cache.read(SQL, ['alice@example.com'], true, loader()));
      await cache.whenIdle();
      expect(cacheInfo(r)!.key).toMatch(/^rp:~:~:[A-Za-z0-9_-]{43}$/);
      expect(store.written.join(' ')).not.toContain('alice');
    });

    it('fold tag versions in, so an invalidation makes old entries unreachable', async () => {
      const { cache } = setup();
      const r = await settle(cache.read(SQL, [1], { tags: ['users'] }, loader()));
      expect(cacheInfo(r)!.key).toMatch(/^rp:~:~:[A-Za-z0-9_-]{43}:\d{16,}$/);
    });
  });

  describe('single-flight', () => {
    it('runs one query for 100 concurrent misses of one entry', async () => {
      const { cache } = setup();
      const load = loader(20);
      const reads = Array.from({ length: 100 }, () => cache.read(SQL, [1], true, load));
      const results = await settle(Promise.all(reads));
      expect(load).toHaveBeenCalledTimes(1);
      expect(new Set(results).size).toBe(100); // every caller its own object
      for (const r of results) expect(r).toEqual(results[0]);
      expect(cache.stats()).toMatchObject({ misses: 100, coalesced: 99 });
      await cache.whenIdle();
      expect(cache.stats().fills).toBe(1);
    });

    it('shares a load() failure, but not another caller’s abort', async () => {
      const { cache } = setup();
      const err = sqlError();
      const both = [
        cache.read(SQL, [1], true, failing(err)),
        cache.read(SQL, [1], true, failing(err)),
      ];
      for (const p of both) await expect(p).rejects.toBe(err);

      const aborted = vi.fn(() => Promise.reject(new AbortedError(undefined, 'leader gave up')));
      const own = loader(5);
      const leader = cache.read(SQL, [2], true, aborted);
      const follower = cache.read(SQL, [2], true, own);
      await expect(leader).rejects.toBeInstanceOf(AbortedError);
      const r = await settle(follower);
      expect(own).toHaveBeenCalledTimes(1);
      expect(r.rows).toHaveLength(1);
    });

    it('does nothing for a read whose signal has already fired', async () => {
      const { cache, store } = setup();
      const load = loader();
      const controller = new AbortController();
      controller.abort('gone');
      await expect(cache.read(SQL, [1], true, load, controller.signal)).rejects.toBeInstanceOf(
        AbortedError,
      );
      expect(load).not.toHaveBeenCalled();
      expect(store.total).toBe(0);
    });

    it('lets a follower’s own signal end its wait', async () => {
      const { cache } = setup();
      const load = loader(100);
      const controller = new AbortController();
      const leader = cache.read(SQL, [1], true, load);
      const follower = cache.read(SQL, [1], true, load, controller.signal);
      controller.abort('done waiting');
      await expect(follower).rejects.toBeInstanceOf(AbortedError);
      await settle(leader);
      expect(load).toHaveBeenCalledTimes(1);
    });
  });

  describe('grace and stale-if-error', () => {
    async function filled(grace: number) {
      const ctx = setup({ ttl: 1_000, grace });
      await settle(ctx.cache.read(SQL, [1], true, loader()));
      await ctx.cache.whenIdle();
      return ctx;
    }

    it('serves the stale entry, marked stale, when the refresh fails for availability', async () => {
      const { cache } = await filled(5_000);
      await vi.advanceTimersByTimeAsync(1_500);
      const load = failing(connectionError());
      const r = await settle(cache.read(SQL, [1], true, load));
      expect(load).toHaveBeenCalledTimes(1);
      expect(r.rows[0]).toMatchObject({ id: 1, name: 'Ann' });
      expect(cacheInfo(r)).toMatchObject({ hit: true, stale: true });
      expect(cache.stats().staleServes).toBe(1);
    });

    it('refreshes a stale entry when the database answers', async () => {
      const { cache } = await filled(5_000);
      await vi.advanceTimersByTimeAsync(1_500);
      const load = loader(0, [{ id: 1, name: 'Bob', created_at: new Date(0) }]);
      const r = await settle(cache.read(SQL, [1], true, load));
      expect(r.rows[0]!.name).toBe('Bob');
      expect(cacheInfo(r)).toMatchObject({ hit: false, stale: false });
    });

    it('does not hide SQL errors behind a stale entry', async () => {
      const { cache } = await filled(5_000);
      await vi.advanceTimersByTimeAsync(1_500);
      const err = sqlError();
      await expect(cache.read(SQL, [1], true, failing(err))).rejects.toBe(err);
    });

    it('fails with the database error past ttl + grace', async () => {
      const { cache } = await filled(5_000);
      await vi.advanceTimersByTimeAsync(6_000);
      const err = connectionError();
      await expect(cache.read(SQL, [1], true, failing(err))).rejects.toBe(err);
    });

    it('serves nothing stale with grace 0 (the default)', async () => {
      const { cache } = await filled(0);
      await vi.advanceTimersByTimeAsync(1_000);
      const err = connectionError();
      await expect(cache.read(SQL, [1], true, failing(err))).rejects.toBe(err);
    });

    it('takes a per-call grace', async () => {
      const { cache } = setup({ ttl: 1_000 });
      await settle(cache.read(SQL, [1], { grace: 5_000 }, loader()));
      await cache.whenIdle();
      await vi.advanceTimersByTimeAsync(2_000);
      const r = await settle(cache.read(SQL, [1], { grace: 5_000 }, failing(connectionError())));
      expect(cacheInfo(r)?.stale).toBe(true);
    });
  });

  describe('tags', () => {
    it('invalidates every entry of a tag, and only those', async () => {
      const { cache } = setup();
      const users = loader();
      const orders = loader();
      await settle(cache.read(SQL, [1], { tags: ['users'] }, users));
      await settle(cache.read(SQL, [2], { tags: ['users', 'orders'] }, users));
      await settle(cache.read('SELECT * FROM orders', [], { tags: ['orders'] }, orders));
      await cache.whenIdle();
      await settle(cache.read(SQL, [1], { tags: ['users'] }, users));
      expect(users).toHaveBeenCalledTimes(2);

      await cache.invalidate(['users']);
      await settle(cache.read(SQL, [1], { tags: ['users'] }, users));
      await settle(cache.read(SQL, [2], { tags: ['orders', 'users'] }, users));
      await settle(cache.read('SELECT * FROM orders', [], { tags: ['orders'] }, orders));
      expect(users).toHaveBeenCalledTimes(4);
      expect(orders).toHaveBeenCalledTimes(1);
      expect(cache.stats().invalidations).toBe(1);
    });

    it('is seen at once by another instance sharing the store', async () => {
      const shared = new MemoryStore();
      const a = setup({}, new FlakyStore(shared)).cache;
      const b = setup({}, new FlakyStore(shared)).cache;
      const load = loader();
      await settle(a.read(SQL, [1], { tags: ['users'] }, load));
      await a.whenIdle();
      const hit = await settle(b.read(SQL, [1], { tags: ['users'] }, load));
      expect(cacheInfo(hit)?.hit).toBe(true);
      await a.invalidate(['users']);
      const miss = await settle(b.read(SQL, [1], { tags: ['users'] }, load));
      expect(cacheInfo(miss)?.hit).toBe(false);
      expect(load).toHaveBeenCalledTimes(2);
    });

    it('does not revive old entries when a tag counter is lost (eviction, flush)', async () => {
      const { cache, store } = setup();
      const load = loader();
      await settle(cache.read(SQL, [1], { tags: ['users'] }, load));
      await cache.whenIdle();
      await vi.advanceTimersByTimeAsync(1);
      await store.inner.del('rp:{tags}:users');
      await settle(cache.read(SQL, [1], { tags: ['users'] }, load));
      expect(load).toHaveBeenCalledTimes(2);
    });

    it('never throws on store failure when invalidating, and says so', async () => {
      const { cache, store, lines } = setup();
      store.mode = 'fail';
      await expect(cache.invalidate(['users', 'orders'])).resolves.toBeUndefined();
      expect(cache.stats()).toMatchObject({ invalidations: 0, invalidationFailures: 2 });
      expect(
        lines.filter((l) => l.level === 'warn' && /invalidation/.test(l.msg ?? '')),
      ).toHaveLength(1);
    });

    it('rejects a bad tag list', async () => {
      const { cache } = setup();
      await expect(cache.invalidate('users' as never)).rejects.toBeInstanceOf(ConfigError);
    });
  });

  describe('scope', () => {
    it('keeps tenants apart with a scope function, overridable per call', async () => {
      let tenant = 'acme';
      const { cache } = setup({ scope: () => tenant });
      const load = loader();
      const a = await settle(cache.read(SQL, [1], true, load));
      await cache.whenIdle();
      tenant = 'globex';
      const b = await settle(cache.read(SQL, [1], true, load));
      await cache.whenIdle();
      expect(load).toHaveBeenCalledTimes(2);
      expect(cacheInfo(a)!.key).toMatch(/^rp:~:acme:/);
      expect(cacheInfo(b)!.key).toMatch(/^rp:~:globex:/);
      tenant = 'acme';
      expect(cacheInfo(await settle(cache.read(SQL, [1], true, load)))?.hit).toBe(true);
      const own = await settle(cache.read(SQL, [1], { scope: 'admin' }, load));
      expect(cacheInfo(own)!.key).toMatch(/^rp:~:admin:/);
      expect(load).toHaveBeenCalledTimes(3);
    });

    it('hashes a scope that is not a plain identifier', async () => {
      const { cache } = setup({ scope: 'user:alice@example.com' });
      const r = await settle(cache.read(SQL, [1], true, loader()));
      expect(cacheInfo(r)!.key).toMatch(/^rp:~:#[A-Za-z0-9_-]{22}:/);
    });

    it('skips the cache when the scope function fails, rather than share', async () => {
      const { cache, store, lines } = setup({
        scope: () => {
          throw new Error('no tenant in context');
        },
      });
      const load = loader();
      const r = await settle(cache.read(SQL, [1], true, load));
      expect(load).toHaveBeenCalledTimes(1);
      expect(cacheInfo(r)).toMatchObject({ bypassed: true, key: '' });
      expect(store.total).toBe(0);
      expect(lines.some((l) => l.level === 'warn' && /scope/.test(l.msg ?? ''))).toBe(true);
    });
  });

  describe('store failures', () => {
    it('opens the breaker on a failing store, then goes straight to the database', async () => {
      const { cache, store, changes } = setup();
      store.mode = 'fail';
      const load = loader();
      for (let i = 0; i < 3; i++) await settle(cache.read(SQL, [1], true, load));
      expect(changes).toEqual([['open', 'closed']]);
      expect(cache.stats()).toMatchObject({ breaker: 'open', errors: 3, bypasses: 3 });
      const callsBefore = store.total;
      for (let i = 0; i < 5; i++) {
        const r = await settle(cache.read(SQL, [1], true, load));
        expect(cacheInfo(r)?.bypassed).toBe(true);
      }
      expect(store.total).toBe(callsBefore);
      expect(load).toHaveBeenCalledTimes(8);
      expect(cache.stats().bypasses).toBe(8);
    });

    it('probes after resetTimeout and closes when the store answers', async () => {
      const { cache, store, changes } = setup({ breaker: { resetTimeout: 1_000 } });
      store.mode = 'fail';
      const load = loader();
      for (let i = 0; i < 3; i++) await settle(cache.read(SQL, [1], true, load));
      store.mode = 'ok';
      await vi.advanceTimersByTimeAsync(1_000);
      expect(cache.stats().breaker).toBe('half-open');
      await settle(cache.read(SQL, [1], true, load));
      expect(changes).toEqual([
        ['open', 'closed'],
        ['half-open', 'open'],
        ['closed', 'half-open'],
      ]);
    });

    it('re-opens when the probe fails', async () => {
      const { cache, store, changes } = setup({ breaker: { resetTimeout: 1_000 } });
      store.mode = 'fail';
      const load = loader();
      for (let i = 0; i < 3; i++) await settle(cache.read(SQL, [1], true, load));
      await vi.advanceTimersByTimeAsync(1_000);
      await settle(cache.read(SQL, [1], true, load));
      expect(changes.at(-1)).toEqual(['open', 'half-open']);
    });

    it('bounds each store call by the timeout', async () => {
      const { cache, store } = setup({ timeout: 50 });
      store.mode = 'hang';
      const load = loader();
      const read = cache.read(SQL, [1], true, load);
      await vi.advanceTimersByTimeAsync(49);
      expect(load).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      const r = await settle(read);
      expect(load).toHaveBeenCalledTimes(1);
      expect(cacheInfo(r)?.bypassed).toBe(true);
      expect(cache.stats()).toMatchObject({ timeouts: 1, errors: 1 });
    });

    it('pays the timeout once per read at most', async () => {
      const { cache, store } = setup({ timeout: 50 });
      store.mode = 'hang';
      const read = cache.read(SQL, [1], { tags: ['users'] }, loader());
      await vi.advanceTimersByTimeAsync(50);
      await settle(read);
      expect(store.total).toBe(1); // the MGET only: no GET, lock or SET after it failed
    });

    it('never serves an entry that belongs to another key (a desynchronised connection)', async () => {
      const { cache, store } = setup();
      const first = await settle(cache.read(SQL, [1], true, loader()));
      await cache.whenIdle();
      const key = cacheInfo(first)!.key;
      const foreign = pgResult([{ id: 666, name: 'Mallory', created_at: new Date(0) }]);
      await store.inner.set(key, encodeEntry('rp:~:another', foreign, Date.now() + 60_000), {});
      const r = await settle(cache.read(SQL, [1], true, loader()));
      expect(r.rows[0]!.name).toBe('Ann');
      expect(cacheInfo(r)?.bypassed).toBe(true);
      expect(cache.stats().errors).toBe(1);
    });

    it('goes straight to load() once closed', async () => {
      const { cache, store } = setup();
      cache.close();
      const load = loader();
      await settle(cache.read(SQL, [1], true, load));
      expect(store.total).toBe(0);
      expect(load).toHaveBeenCalledTimes(1);
    });
  });

  describe('fill lock across instances', () => {
    it('lets one instance fill while the other waits for the entry', async () => {
      const shared = new MemoryStore();
      const a = setup({}, new FlakyStore(shared)).cache;
      const b = setup({ lock: { wait: 1_000, poll: 20 } }, new FlakyStore(shared)).cache;
      const load = loader(100);
      const ra = a.read(SQL, [1], true, load);
      await vi.advanceTimersByTimeAsync(1);
      const rb = b.read(SQL, [1], true, load);
      const [x, y] = await settle(Promise.all([ra, rb]), 2_000);
      expect(load).toHaveBeenCalledTimes(1);
      expect(y).toEqual(x);
      expect(cacheInfo(y)).toMatchObject({ hit: true, stale: false });
    });

    it('runs the query itself when the wait ends without an entry', async () => {
      const shared = new MemoryStore();
      const a = setup({}, new FlakyStore(shared)).cache;
      const b = setup({ lock: { wait: 100, poll: 20 } }, new FlakyStore(shared)).cache;
      const slow = loader(1_000);
      const fast = loader(0);
      const ra = a.read(SQL, [1], true, slow);
      await vi.advanceTimersByTimeAsync(1);
      const rb = b.read(SQL, [1], true, fast);
      await settle(rb, 500);
      expect(fast).toHaveBeenCalledTimes(1);
      await settle(ra, 2_000);
    });

    it('serves a stale entry while another instance refreshes it', async () => {
      const shared = new MemoryStore();
      const a = setup({ ttl: 1_000, grace: 10_000 }, new FlakyStore(shared)).cache;
      const b = setup({ ttl: 1_000, grace: 10_000 }, new FlakyStore(shared)).cache;
      await settle(a.read(SQL, [1], true, loader()));
      await a.whenIdle();
      await vi.advanceTimersByTimeAsync(2_000);
      const slow = loader(500);
      const ra = a.read(SQL, [1], true, slow);
      await vi.advanceTimersByTimeAsync(1);
      const other = loader();
      const rb = await settle(b.read(SQL, [1], true, other), 100);
      expect(other).not.toHaveBeenCalled();
      expect(cacheInfo(rb)).toMatchObject({ hit: true, stale: true });
      await settle(ra, 1_000);
    });

    it('can be turned off', async () => {
      const { cache, store } = setup({ lock: false });
      await settle(cache.read(SQL, [1], true, loader()));
      await cache.whenIdle();
      expect(store.calls.lock).toBeUndefined();
      expect(store.calls.unlock).toBeUndefined();
    });

    it('releases the lock after storing the entry', async () => {
      const { cache, store } = setup();
      await settle(cache.read(SQL, [1], true, loader()));
      await cache.whenIdle();
      expect(store.calls).toMatchObject({ get: 1, lock: 1, set: 1, unlock: 1 });
      expect(store.inner.size).toBe(1); // the entry; the lock is gone
    });
  });

  it('warns about ioredis client options that keep it from recovering', () => {
    const redis = {
      options: { enableOfflineQueue: true },
      get: async () => null,
      mget: async () => [],
      set: async () => 'OK',
      del: async () => 0,
      eval: async () => 0,
    };
    const problems: string[] = [];
    const options = resolveCacheOptions({ redis }, problems)!;
    const { logger, lines } = recordingLogger();
    caches.push(new ReadThroughCache(options, { logger, onBreaker: () => {} }));
    expect(lines.map((l) => l.msg)).toEqual([
      expect.stringContaining('socketTimeout'),
      expect.stringContaining('enableOfflineQueue: false'),
    ]);
  });

  it('survives a breaker listener that throws', async () => {
    const store = new FlakyStore();
    const problems: string[] = [];
    const options = resolveCacheOptions({ store }, problems)!;
    const { logger, lines } = recordingLogger();
    const cache = new ReadThroughCache(options, {
      logger,
      onBreaker: () => {
        throw new Error('listener bug');
      },
    });
    caches.push(cache);
    store.mode = 'fail';
    for (let i = 0; i < 3; i++) await settle(cache.read(SQL, [1], true, loader()));
    expect(cache.stats().breaker).toBe('open');
    expect(lines.some((l) => l.level === 'error')).toBe(true);
  });
});
