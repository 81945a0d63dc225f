/**
 * Redis black-holed through ChaosProxy: reads keep succeeding through load(), the cache's breaker
 * opens so that later reads do not touch Redis at all, and after the network heals the cache
 * recovers by itself (half-open probe, then closed) and serves entries again.
 *
 * Behaviour is asserted, not timings: which calls reached the store (errors counted) and which
 * reads bypassed it.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { cacheInfo } from '../../../src/cache/cache-info.js';
import { ReadThroughCache } from '../../../src/cache/read-through-cache.js';
import { resolveCacheOptions } from '../../../src/options/cache.js';
import type { QueryResultLike } from '../../../src/pg-like.js';
import type { BreakerState } from '../../../src/telemetry/events.js';
import { ChaosProxy } from '../../../src/testing/chaos-proxy.js';
import { until } from '../../support/wait.js';
import {
  describeWithRedis,
  loopbackRedisTarget,
  testPrefix,
  useRedisClients,
} from './redis-env.js';

const prefix = testPrefix();
const redis = useRedisClients(prefix);
const target = loopbackRedisTarget();
const proxies: ChaosProxy[] = [];
const caches: ReadThroughCache[] = [];
const SQL = 'SELECT * FROM users WHERE id = $1';
const silent = { error() {}, warn() {}, info() {}, debug() {} };

afterEach(async () => {
  for (const cache of caches.splice(0)) cache.close();
  for (const proxy of proxies.splice(0)) {
    proxy.heal();
    await proxy.close();
  }
});

const load = vi.fn(
  async (): Promise<QueryResultLike> => ({
    command: 'SELECT',
    rowCount: 1,
    rows: [{ id: 1, at: new Date(0) }],
    fields: [{ name: 'id', dataTypeID: 23 }],
  }),
);

describeWithRedis('ReadThroughCache when Redis is black-holed', () => {
  it.skipIf(target === undefined)(
    'reads go to the database, the breaker opens, and the cache recovers after heal',
    async () => {
      const proxy = await ChaosProxy.start({ target: target! });
      proxies.push(proxy);
      // The options docs/cache.md recommends. socketTimeout replaces the silent connection: the
      // black hole swallowed the commands the cache's timer gave up on, so until the socket is
      // replaced every reply would go to an older command. It must be shorter than the cache
      // breaker's resetTimeout, so that it fires while the open breaker sends nothing.
      const client = await redis.open(
        { socketTimeout: 400, connectTimeout: 500, retryStrategy: () => 50 },
        proxy.port,
      );
      const problems: string[] = [];
      const options = resolveCacheOptions(
        {
          redis: client,
          prefix,
          // Roomier than the 50 ms default so a busy CI machine cannot trip it before the fault.
          timeout: 250,
          breaker: { consecutiveFailures: 3, resetTimeout: 800 },
        },
        problems,
      );
      expect(problems).toEqual([]);
      const changes: Array<[BreakerState, BreakerState]> = [];
      const cache = new ReadThroughCache(options!, {
        logger: silent,
        onBreaker: (state, previous) => changes.push([state, previous]),
      });
      caches.push(cache);

      // Warm: one fill, one hit.
      await cache.read(SQL, [1], true, load);
      await cache.whenIdle();
      expect(cacheInfo(await cache.read(SQL, [1], true, load))?.hit).toBe(true);
      load.mockClear();

      proxy.blackhole();
      const during: boolean[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await cache.read(SQL, [1], true, load);
        expect(r.rows).toEqual([{ id: 1, at: new Date(0) }]);
        during.push(cacheInfo(r)!.bypassed);
      }
      // Every read was answered by load(). The first three each made one store call that failed
      // (timed out, or was refused at once after ioredis' socketTimeout dropped the silent
      // connection), which opened the breaker; the seven after it did not touch Redis at all.
      expect(load).toHaveBeenCalledTimes(10);
      expect(during.every(Boolean)).toBe(true);
      expect(changes).toEqual([['open', 'closed']]);
      expect(cache.stats()).toMatchObject({ breaker: 'open', errors: 3, bypasses: 10 });
      expect(cache.stats().timeouts).toBeGreaterThanOrEqual(1);

      proxy.heal();
      await until(
        'the cache breaker to close again',
        async () => {
          await cache.read(SQL, [1], true, load);
          return cache.stats().breaker === 'closed';
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      expect(changes.at(-2)).toEqual(['half-open', 'open']);
      expect(changes.at(-1)).toEqual(['closed', 'half-open']);

      // In use again: the entry (written before the black hole, or since) is served.
      await cache.whenIdle();
      await until('a cache hit after recovery', async () => {
        const r = await cache.read(SQL, [1], true, load);
        return cacheInfo(r)?.hit === true;
      });
    },
  );
});
