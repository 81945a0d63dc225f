/**
 * The cache in front of a real PostgreSQL, through the ResilientPool: concurrent misses run one
 * query (counted by the server), and a dead database is papered over within `grace` only.
 */
import { expect, it } from 'vitest';
import { cacheInfo } from '../../../src/cache/index.js';
import { ResilientPool } from '../../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../../support/cluster.js';
import { until } from '../../support/wait.js';
import { describeWithRedis, testPrefix, useRedisClients } from './redis-env.js';

const handle = useCluster({ replicas: 0 });
const prefix = testPrefix();
const redis = useRedisClients(prefix);

describeWithRedis('the cache through the pool, on a real database', () => {
  it('100 concurrent misses on one key run exactly one query, counted on the server', async () => {
    const db = new ResilientPool({
      primary: handle.cluster.primary.createPool({ max: 10 }),
      cache: { redis: await redis.open(), prefix: `${prefix}sf:`, timeout: 1_000 },
      logger: false,
    });
    try {
      await db.write('CREATE TABLE IF NOT EXISTS cache_calls (n int)');
      await db.write('TRUNCATE cache_calls');
      // A read whose every execution leaves a row behind: the server counts the queries.
      await db.write(
        `CREATE OR REPLACE FUNCTION cache_counted() RETURNS int LANGUAGE sql AS
         $$ INSERT INTO cache_calls VALUES (1); SELECT count(*)::int FROM cache_calls $$`,
      );
      const results = await Promise.all(
        Array.from({ length: 100 }, () =>
          db.read('SELECT cache_counted() AS n, pg_sleep(0.05)', [], { cache: true }),
        ),
      );
      const executed = await db.write<{ n: number }>('SELECT count(*)::int AS n FROM cache_calls');
      expect(executed.rows[0]?.n).toBe(1);
      expect(new Set(results.map((r) => r.rows[0]?.n))).toEqual(new Set([1]));
    } finally {
      await db.end();
    }
  });

  it.skipIf(!handle.canControlProcesses)(
    `serves stale entries within grace while the database is down, then the typed error (${NEEDS_LOCAL_CLUSTER})`,
    async () => {
      const primary = handle.cluster.primary;
      const db = new ResilientPool({
        primary: primary.createPool({ max: 4, connectionTimeoutMillis: 1_000 }),
        cache: {
          redis: await redis.open(),
          prefix: `${prefix}grace:`,
          ttl: 200,
          jitter: 0,
          grace: 3_000,
          timeout: 1_000,
        },
        breaker: { consecutiveFailures: 1, resetTimeout: 60_000 },
        retry: { retries: 0 },
        logger: false,
      });
      try {
        const fresh = await db.read('SELECT 42 AS answer', [], { cache: true });
        expect(cacheInfo(fresh)).toMatchObject({ hit: false, stale: false });
        await new Promise((r) => setTimeout(r, 400)); // past ttl, within grace
        await primary.kill();
        const stale = await db.read('SELECT 42 AS answer', [], { cache: true });
        expect(stale.rows).toEqual([{ answer: 42 }]);
        expect(cacheInfo(stale)).toMatchObject({ hit: true, stale: true });
        expect(db.stats().cache?.staleServes).toBeGreaterThan(0);
        // Past ttl + grace the entry is gone and the caller sees the database's failure.
        const err = await until(
          'the entry to be past its grace',
          () =>
            db.read('SELECT 42 AS answer', [], { cache: true }).then(
              () => undefined,
              (e: unknown) => e,
            ),
          { timeoutMs: 10_000, intervalMs: 250 },
        );
        // The endpoint's typed refusal (circuit open, or known down) or pg's own connect error.
        expect((err as { code?: string }).code).toMatch(
          /^(E_CIRCUIT_OPEN|E_ENDPOINT_DOWN|ECONNREFUSED)$/,
        );
      } finally {
        await primary.start();
        await db.end();
      }
    },
  );
});
