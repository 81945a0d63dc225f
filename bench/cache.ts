/**
 * Cache case: a cache hit through `db.read(sql, values, { cache: true })` of the built library
 * (the whole read path: options check, classification, key, Redis, decoding) against what an
 * application would do by hand with the same Redis: `GET` the same payload and `JSON.parse` it. Same client, same
 * payload, alternating rounds (raw, cached, raw, cached, ...) after an untimed warm-up of each;
 * reported as ns per call and the ratio cached / raw (target: at most 1.2).
 *
 * At concurrency > 1 every worker reads its own entry, so the cache's single-flight (which would
 * merge concurrent reads of one entry into one GET) does not flatter it.
 *
 * Needs Redis at REDIS_URL (default redis://127.0.0.1:6379). Run alone with
 * `npx tsx bench/cache.ts [--quick]`, or call `cacheBench(plan)` from bench/run.ts.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { QueryResultLike } from '../src/pg-like.js';
import { FakePool } from '../test/support/fake-pool.js';
import { type BenchPlan, parsePlan } from './config.js';
import { fmtNs, fmtRatio, median } from './stats.js';
import { cacheInfo, ResilientPool } from './subject.js';
import { note, printTable } from './table.js';
import { within } from './watchdog.js';

const SQL =
  'SELECT id, email, name, created_at, updated_at, active, score, profile FROM users WHERE org_id = $1';
const ROWS = 20;

export interface CacheBenchCase {
  concurrency: number;
  rounds: number;
  calls: number;
  rawNs: number[];
  cachedNs: number[];
  rawMedianNs: number;
  cachedMedianNs: number;
  /** cached / raw, of the medians. */
  ratio: number;
  medianPairRatio: number;
  /** Size of the raw payload and of the cache entry, in bytes. */
  rawBytes: number;
  entryBytes: number;
}

export interface CacheBenchResult {
  redis: string;
  cases: CacheBenchCase[];
  /** Reads that were not hits (should be 0: a bypass means Redis was slow or failing). */
  nonHits: number;
}

/** A result shaped like pg's for a 20-row, 8-column read with dates and a jsonb column. */
function payload(org: number): QueryResultLike {
  const rows = Array.from({ length: ROWS }, (_, i) => ({
    id: org * 1_000 + i,
    email: `user${i}@org${org}.example.com`,
    name: `User Number ${i}`,
    created_at: new Date(Date.UTC(2023, 0, 1 + i, 12, 0, 0, 123)),
    updated_at: new Date(Date.UTC(2024, 5, 1 + i, 8, 30, 0, 456)),
    active: i % 3 !== 0,
    score: '12345.678',
    profile: { locale: 'en-GB', tags: ['a', 'b', `t${i}`], prefs: { theme: 'dark', n: i } },
  }));
  const types = [23, 25, 25, 1184, 1184, 16, 1700, 3802];
  return {
    command: 'SELECT',
    rowCount: ROWS,
    rows,
    fields: Object.keys(rows[0]!).map((name, i) => ({ name, dataTypeID: types[i]! })),
  };
}

const PLANS = {
  full: { rounds: 15, calls: 3_000 },
  quick: { rounds: 3, calls: 1_000 },
};

async function timeCalls(
  one: (worker: number) => Promise<unknown>,
  calls: number,
  concurrency: number,
) {
  const share = Math.floor(calls / concurrency);
  const worker = async (w: number, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await one(w);
  };
  const start = process.hrtime.bigint();
  await within(
    Promise.all(
      Array.from({ length: concurrency }, (_, w) =>
        worker(w, w === 0 ? calls - share * (concurrency - 1) : share),
      ),
    ),
    60_000,
    `a round of ${calls} cache reads`,
  );
  return Number(process.hrtime.bigint() - start) / calls;
}

export async function cacheBench(plan: Pick<BenchPlan, 'quick'>): Promise<CacheBenchResult> {
  const url = process.env.REDIS_URL?.trim() || 'redis://127.0.0.1:6379';
  const { rounds, calls } = plan.quick ? PLANS.quick : PLANS.full;
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    socketTimeout: 1_000,
    connectTimeout: 2_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new Error(`no Redis at REDIS_URL=${url}: ${(err as Error).message}`);
  }
  const prefix = `rp-bench-${randomUUID().slice(0, 8)}:`;
  let nonHits = 0;
  // The database behind the cache: a fake that counts how often a read missed.
  const primary = new FakePool('bench', 32);
  primary.handler = (_text, values) => {
    nonHits++;
    return payload(Number(values?.[0] ?? 0));
  };
  const db = new ResilientPool({
    primary,
    cache: { redis: client, prefix, ttl: 600_000 },
    logger: false,
  });
  const cases: CacheBenchCase[] = [];
  try {
    for (const concurrency of [1, 16]) {
      // One entry per worker, filled before timing; the raw side gets the same payloads.
      const rawKeys: string[] = [];
      let entryBytes = 0;
      let rawBytes = 0;
      for (let w = 0; w < concurrency; w++) {
        const result = payload(w);
        const first = await db.read(SQL, [w], { cache: true });
        nonHits--; // the fill
        await new Promise((resolve) => setTimeout(resolve, 50)); // the entry is written behind
        const key = cacheInfo(first)?.key ?? '';
        entryBytes = Buffer.byteLength((await client.get(key)) ?? '');
        const rawKey = `${prefix}raw:${w}`;
        const json = JSON.stringify(result);
        rawBytes = Buffer.byteLength(json);
        await client.set(rawKey, json, 'PX', 600_000);
        rawKeys.push(rawKey);
      }
      const raw = async (w: number) => JSON.parse((await client.get(rawKeys[w]!)) as string);
      const cached = (w: number) => db.read(SQL, [w], { cache: true });

      await timeCalls(raw, calls, concurrency);
      await timeCalls(cached, calls, concurrency);
      const rawNs: number[] = [];
      const cachedNs: number[] = [];
      for (let i = 0; i < rounds; i++) {
        rawNs.push(await timeCalls(raw, calls, concurrency));
        cachedNs.push(await timeCalls(cached, calls, concurrency));
      }
      const rawMedianNs = median(rawNs);
      const cachedMedianNs = median(cachedNs);
      cases.push({
        concurrency,
        rounds,
        calls,
        rawNs,
        cachedNs,
        rawMedianNs,
        cachedMedianNs,
        ratio: cachedMedianNs / rawMedianNs,
        medianPairRatio: median(cachedNs.map((c, i) => c / rawNs[i]!)),
        rawBytes,
        entryBytes,
      });
    }
    const stats = db.stats().cache;
    nonHits += (stats?.bypasses ?? 0) + (stats?.staleServes ?? 0);
  } finally {
    await db.end({ timeout: 1_000 });
    const keys = await client.keys(`${prefix}*`).catch(() => [] as string[]);
    if (keys.length > 0) await client.del(keys).catch(() => {});
    client.disconnect();
  }
  const result = { redis: new URL(url).host, cases, nonHits };
  printCacheBench(result);
  return result;
}

/** How to read the cache table's ratio. */
export const CACHE_READ_AS = 'cached / raw ns/call; lower is better (target <= 1.2)';

export function printCacheBench(result: CacheBenchResult): void {
  const first = result.cases[0];
  printTable(
    `Cache hit: db.read(..., { cache: true }) vs ioredis GET + JSON.parse of the same payload (Redis ${result.redis}, ${first?.rounds ?? 0} round pairs of ${first?.calls ?? 0} calls)`,
    [
      'concurrency',
      'raw ns/call',
      'cached ns/call',
      'ratio',
      'pair-median ratio',
      'read the ratio as',
      'bytes raw/entry',
    ],
    result.cases.map((c) => [
      String(c.concurrency),
      fmtNs(c.rawMedianNs),
      fmtNs(c.cachedMedianNs),
      fmtRatio(c.ratio),
      fmtRatio(c.medianPairRatio),
      CACHE_READ_AS,
      `${c.rawBytes}/${c.entryBytes}`,
    ]),
    [5],
  );
  for (const c of result.cases) {
    note(
      `c=${c.concurrency} pair ratios: ${c.cachedNs.map((x, i) => fmtRatio(x / c.rawNs[i]!)).join(' ')}`,
    );
  }
  if (result.nonHits > 0) {
    note(`WARNING: ${result.nonHits} timed reads were not hits (Redis slow or failing?)`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await cacheBench(parsePlan(process.argv.slice(2)));
}
