/**
 * Keys against real PostgreSQL: two pools on different databases, sharing one store and one
 * prefix, each get their own rows; parameters that pg sends differently (a toPostgres()) get their
 * own entries; parameters pg cannot send fail through the cache exactly as through pg (the
 * differential: the same inputs through both).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheInfo } from '../../../src/cache/cache-info.js';
import { cacheIdentity } from '../../../src/cache/identity.js';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import { ReadThroughCache } from '../../../src/cache/read-through-cache.js';
import { ResilientPool } from '../../../src/index.js';
import { resolveCacheOptions } from '../../../src/options/cache.js';
import type { PgPoolLike, QueryResultLike } from '../../../src/pg-like.js';
import { useCluster } from '../../support/cluster.js';
import { describeWithRedis, testPrefix, useRedisClients } from './redis-env.js';

const OTHER_DB = 'rp_cache_scoping';
const SQL = 'SELECT name FROM settings WHERE id = $1';
const handle = useCluster({ replicas: 0 });

let poolA: pg.Pool;
let poolB: pg.Pool;

/**
 * A new pool with the settings of `pool`, on `database` if given (a connection string wins over
 * fields in pg, so it is rewritten too).
 */
function onDatabase(pool: pg.Pool, database?: string): pg.Pool {
  const options = (pool as unknown as { options: pg.PoolConfig }).options;
  let connectionString = options.connectionString;
  if (connectionString !== undefined && database !== undefined) {
    const url = new URL(connectionString);
    url.pathname = `/${database}`;
    connectionString = url.href;
  }
  // pg-pool keeps the password as a non-enumerable option: a spread would drop it.
  const other = new pg.Pool({
    ...options,
    password: options.password,
    connectionString,
    database: database ?? options.database,
  });
  other.on('error', () => {});
  return other;
}

beforeAll(async () => {
  poolA = handle.cluster.primary.createPool({ max: 2 });
  await poolA.query(`CREATE DATABASE ${OTHER_DB}`).catch((err: { code?: string }) => {
    if (err.code !== '42P04') throw err; // already there (an earlier run on an external server)
  });
  poolB = onDatabase(poolA, OTHER_DB);
  for (const [pool, name] of [
    [poolA, 'row of A'],
    [poolB, 'row of B'],
  ] as const) {
    await pool.query('DROP TABLE IF EXISTS settings');
    await pool.query('CREATE TABLE settings (id int PRIMARY KEY, name text)');
    await pool.query('INSERT INTO settings VALUES (1, $1)', [name]);
  }
});

afterAll(async () => {
  await poolB?.end();
  await poolA?.query('DROP TABLE IF EXISTS settings');
});

const load = (pool: pg.Pool, text: string, values: unknown[]) => () =>
  pool.query(text, values) as unknown as Promise<QueryResultLike>;

function suite(storeFor: () => { redis: unknown } | { store: MemoryStore }, prefix: string) {
  const caches: ReadThroughCache[] = [];
  const cacheFor = (pool: pg.Pool) => {
    const problems: string[] = [];
    const options = resolveCacheOptions({ ...storeFor(), prefix, timeout: 1_000 }, problems);
    expect(problems).toEqual([]);
    const cache = new ReadThroughCache(options!, {
      logger: { error() {}, warn() {}, info() {}, debug() {} },
      onBreaker: () => {},
      identity: cacheIdentity([pool as unknown as PgPoolLike]),
    });
    caches.push(cache);
    return cache;
  };
  afterAll(async () => {
    for (const c of caches.splice(0)) {
      await c.whenIdle();
      c.close();
    }
  });

  it('gives pools on different databases their own rows, over one store and prefix', async () => {
    const a = cacheFor(poolA);
    const b = cacheFor(poolB);
    const ra = await a.read(SQL, [1], true, load(poolA, SQL, [1]));
    await a.whenIdle();
    const rb = await b.read(SQL, [1], true, load(poolB, SQL, [1]));
    await b.whenIdle();
    expect(ra.rows).toEqual([{ name: 'row of A' }]);
    expect(rb.rows).toEqual([{ name: 'row of B' }]);
    expect(cacheInfo(rb)?.hit).toBe(false);
    // And each is then served its own entry.
    const ha = await a.read(SQL, [1], true, load(poolA, SQL, [1]));
    const hb = await b.read(SQL, [1], true, load(poolB, SQL, [1]));
    expect([cacheInfo(ha)?.hit, cacheInfo(hb)?.hit]).toEqual([true, true]);
    expect(ha.rows).toEqual([{ name: 'row of A' }]);
    expect(hb.rows).toEqual([{ name: 'row of B' }]);
  });

  it('gives values that pg sends differently their own entries', async () => {
    const cache = cacheFor(poolA);
    const text = 'SELECT $1::text AS v';
    const unit = (u: string) => {
      const t = { degrees: 20 };
      Object.defineProperty(t, 'toPostgres', { value: () => `20${u}`, enumerable: false });
      return t;
    };
    const c = await cache.read(text, [unit('C')], true, load(poolA, text, [unit('C')]));
    await cache.whenIdle();
    const f = await cache.read(text, [unit('F')], true, load(poolA, text, [unit('F')]));
    expect(c.rows).toEqual([{ v: '20C' }]);
    expect(f.rows).toEqual([{ v: '20F' }]);
  });

  describe('fails as pg fails on parameters pg cannot send', () => {
    const circular = () => {
      const value: { toPostgres?: () => unknown } = {};
      value.toPostgres = () => value;
      return value;
    };
    const throwing = () => ({
      toPostgres() {
        throw new Error('no postgres form');
      },
    });
    const cases: Array<[string, () => unknown[]]> = [
      ['a BigInt inside JSON', () => [{ n: 1n }]],
      ['a circular toPostgres', () => [circular()]],
      ['a throwing toPostgres', () => [throwing()]],
      [
        'a circular object',
        () => {
          const o: Record<string, unknown> = {};
          o.self = o;
          return [o];
        },
      ],
    ];
    for (const [name, values] of cases) {
      it(name, async () => {
        const cache = cacheFor(poolA);
        const text = 'SELECT $1::text AS v';
        const direct = await poolA.query(text, values()).then(
          () => undefined,
          (err: Error) => err,
        );
        expect(direct).toBeInstanceOf(Error);
        for (const call of [true, { key: 'explicit' }] as const) {
          // Called inside the promise chain: a synchronous throw from read() would fail this too.
          const cached = await Promise.resolve()
            .then(() => cache.read(text, values(), call, load(poolA, text, values())))
            .then(
              () => undefined,
              (err: Error) => err,
            );
          expect(cached?.constructor).toBe(direct!.constructor);
          expect(cached?.message).toBe(direct!.message);
        }
        expect(cache.stats()).toMatchObject({ bypasses: 2, fills: 0 });
        // The pool is unharmed.
        expect((await poolA.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
      });
    }
  });
}

describe('through ResilientPool (the identity wired in)', () => {
  it('gives pools on different databases their own rows, over one store and prefix', async () => {
    const store = new MemoryStore();
    const dbA = new ResilientPool({
      primary: onDatabase(poolA),
      cache: { store },
      logger: false,
    });
    const dbB = new ResilientPool({
      primary: onDatabase(poolA, OTHER_DB),
      cache: { store },
      logger: false,
    });
    try {
      const a = await dbA.read(SQL, [1], { cache: true });
      expect(a.rows).toEqual([{ name: 'row of A' }]);
      await dbA.read(SQL, [1], { cache: true });
      expect(dbA.stats().cache?.hits).toBe(1);
      const b = await dbB.read(SQL, [1], { cache: true });
      expect(b.rows).toEqual([{ name: 'row of B' }]);
      expect(cacheInfo(b)?.key).not.toBe(cacheInfo(a)?.key);
    } finally {
      await dbA.end();
      await dbB.end();
    }
  });
});

describe('keys against PostgreSQL (MemoryStore)', () => {
  const store = new MemoryStore();
  suite(() => ({ store }), 'rp:');
});

describeWithRedis('keys against PostgreSQL (real Redis)', () => {
  const prefix = testPrefix();
  const redis = useRedisClients(prefix);
  let client: unknown;
  beforeAll(async () => {
    client = await redis.open();
  });
  suite(() => ({ redis: client }), prefix);
});
