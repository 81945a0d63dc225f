/**
 * What real PostgreSQL returns through node-postgres comes back from the cache deep-equal: one
 * column per type the default type parsers produce (Date, Buffer, int8 and numeric as strings,
 * NaN and ±Infinity, -0, json/jsonb, arrays of dates, ...), through the in-process store and
 * through the real Redis.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheInfo } from '../../../src/cache/cache-info.js';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import { ReadThroughCache } from '../../../src/cache/read-through-cache.js';
import { resolveCacheOptions } from '../../../src/options/cache.js';
import type { QueryResultLike } from '../../../src/pg-like.js';
import { useCluster } from '../../support/cluster.js';
import { describeWithRedis, testPrefix, useRedisClients } from './redis-env.js';

const ALL_TYPES = `
SELECT
  42::int4 AS int4, 7::int2 AS int2, 9223372036854775807::int8 AS int8,
  1.5::float8 AS float8, 0.25::float4 AS float4, 'NaN'::float8 AS nan,
  'Infinity'::float8 AS inf, '-Infinity'::float8 AS ninf, '-0'::float8 AS negzero,
  12345678901234567890.000000001::numeric AS numeric,
  true AS yes, false AS no, NULL::text AS nothing, 'héllo "w" \\ 😀'::text AS text,
  $1::text AS param,
  '2024-02-29 12:34:56.789+00'::timestamptz AS timestamptz,
  '2024-02-29 12:34:56.789'::timestamp AS timestamp, '2024-02-29'::date AS date,
  '\\x00ff10'::bytea AS bytea, ''::bytea AS empty_bytea,
  '{"a": 1, "b": [true, null, "x"], "c": {"d": {}}, "$date": 5}'::jsonb AS jsonb,
  '[1, "two", {"three": 3}]'::json AS json,
  ARRAY[1, 2, NULL]::int4[] AS int4_array,
  ARRAY['2024-01-01 00:00:00+00'::timestamptz, NULL, '1999-12-31 23:59:59.999+00'] AS tstz_array,
  ARRAY[ARRAY['a', 'b'], ARRAY['c', NULL]]::text[] AS text_matrix,
  ARRAY['\\x01'::bytea] AS bytea_array,
  'f47ac10b-58cc-4372-a567-0e02b2c3d479'::uuid AS uuid,
  '1 day 02:03:04.5'::interval AS interval
FROM generate_series(1, 3) AS g(n)`;

/** Columns whose pg value is a class instance; they come back as plain data of the same shape. */
const CLASS_VALUED = ['interval'];

function withoutClassValued(rows: Array<Record<string, unknown>>) {
  return rows.map((r) =>
    Object.fromEntries(Object.entries(r).filter(([k]) => !CLASS_VALUED.includes(k))),
  );
}

function check(original: QueryResultLike, cached: QueryResultLike): void {
  expect(cached).not.toBe(original);
  // Same classes (Date, Buffer), same -0 and NaN: strict equality, row by row.
  expect(withoutClassValued(cached.rows)).toStrictEqual(withoutClassValued(original.rows));
  expect(cached.rows).toEqual(original.rows);
  expect(cached.rowCount).toBe(original.rowCount);
  expect(cached.command).toBe(original.command);
  expect(cached.fields).toEqual(original.fields?.map((f) => ({ ...f })));
  expect(cached.fields?.map((f) => [f.name, f.dataTypeID])).toEqual(
    original.fields?.map((f) => [f.name, f.dataTypeID]),
  );
}

const handle = useCluster({ replicas: 0 });

function roundTrips(storeFor: () => { redis: unknown } | { store: MemoryStore }, prefix: string) {
  let pool: pg.Pool;
  let cache: ReadThroughCache;
  beforeAll(() => {
    pool = handle.cluster.primary.createPool({ max: 2 });
    const problems: string[] = [];
    const options = resolveCacheOptions({ ...storeFor(), prefix, timeout: 1_000 }, problems);
    expect(problems).toEqual([]);
    cache = new ReadThroughCache(options!, {
      logger: { error() {}, warn() {}, info() {}, debug() {} },
      onBreaker: () => {},
    });
  });
  afterAll(async () => {
    cache?.close();
    await pool?.end();
  });

  it('gives back every type as pg parsed it', async () => {
    let original: QueryResultLike | undefined;
    const load = async () => {
      original = (await pool.query(ALL_TYPES, ['secret-param'])) as unknown as QueryResultLike;
      return original;
    };
    const miss = await cache.read(ALL_TYPES, ['secret-param'], true, load);
    expect(miss).toBe(original);
    await cache.whenIdle();
    const hit = await cache.read(ALL_TYPES, ['secret-param'], true, load);
    expect(cacheInfo(hit)).toMatchObject({ hit: true, stale: false });
    check(original!, hit);
    const row = hit.rows[0]!;
    expect(row.timestamptz).toBeInstanceOf(Date);
    expect(Buffer.isBuffer(row.bytea)).toBe(true);
    expect(Object.is(row.negzero, -0)).toBe(true);
    expect(row.int8).toBe('9223372036854775807');
    expect(cacheInfo(hit)!.key).not.toContain('secret');
  });

  it('keeps rowMode array results apart and intact', async () => {
    const config = { text: ALL_TYPES, values: ['p'], rowMode: 'array' as const };
    let original: QueryResultLike | undefined;
    const load = async () => {
      original = (await pool.query(config)) as unknown as QueryResultLike;
      return original;
    };
    const miss = await cache.read(config, undefined, true, load);
    await cache.whenIdle();
    const hit = await cache.read(config, undefined, true, load);
    expect(cacheInfo(hit)?.hit).toBe(true);
    expect(Array.isArray(hit.rows[0])).toBe(true);
    expect(hit.rows).toEqual(original!.rows);
    expect(cacheInfo(miss)!.key).not.toBe(
      cacheInfo(await cache.read(ALL_TYPES, ['p'], true, load))!.key,
    );
  });
}

describe('PostgreSQL results through the cache (MemoryStore)', () => {
  roundTrips(() => ({ store: new MemoryStore() }), 'rp:');
});

describeWithRedis('PostgreSQL results through the cache (real Redis)', () => {
  const prefix = testPrefix();
  const redis = useRedisClients(prefix);
  let client: unknown;
  beforeAll(async () => {
    client = await redis.open();
  });
  roundTrips(() => ({ redis: client }), prefix);
});
