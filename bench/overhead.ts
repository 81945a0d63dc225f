/**
 * Case 2: in-process overhead of `ResilientPool.query` over the no-I/O FakePool, against what
 * pg.Pool's own `query` does (connect, query, release) called directly on the same FakePool.
 * Both sides are timed with process.hrtime.bigint() in alternating rounds after an untimed
 * warm-up round each.
 */

import { FakePool } from '../test/support/fake-pool.js';
import type { BenchPlan } from './config.js';
import { median } from './stats.js';
import { ResilientPool } from './subject.js';
import { within } from './watchdog.js';

const SQL = 'SELECT 1';

export interface OverheadResult {
  concurrency: number;
  calls: number;
  rounds: number;
  rawNs: number[];
  wrappedNs: number[];
  rawMedianNs: number;
  wrappedMedianNs: number;
  /** Median wrapped ns per call minus median raw ns per call. */
  overheadNs: number;
  medianPairOverheadNs: number;
  /** wrapped / raw, of the medians. */
  ratio: number;
  medianPairRatio: number;
}

/** Runs `calls` calls of `one` spread over `concurrency` workers; ns per call. */
export async function timeCalls(
  one: () => Promise<unknown>,
  calls: number,
  concurrency: number,
  limitMs: number,
): Promise<number> {
  const share = Math.floor(calls / concurrency);
  const worker = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await one();
  };
  const start = process.hrtime.bigint();
  await within(
    Promise.all(
      Array.from({ length: concurrency }, (_, w) =>
        worker(w === 0 ? calls - share * (concurrency - 1) : share),
      ),
    ),
    limitMs,
    `a round of ${calls} in-process calls`,
  );
  return Number(process.hrtime.bigint() - start) / calls;
}

export async function fakeOverhead(concurrency: number, plan: BenchPlan): Promise<OverheadResult> {
  const fake = new FakePool('fake', concurrency);
  const db = new ResilientPool({ primary: fake, logger: false, ownsPools: false });
  // What pg.Pool.query does, minus its callback plumbing: the work the wrapper adds to.
  const raw = async (): Promise<unknown> => {
    const client = await fake.connect();
    const result = await client.query(SQL);
    client.release();
    return result;
  };
  const wrapped = (): Promise<unknown> => db.query(SQL);
  const calls = plan.cpuCalls;
  const limit = plan.cpuRoundLimitMs;
  try {
    await timeCalls(raw, calls, concurrency, limit);
    await timeCalls(wrapped, calls, concurrency, limit);
    fake.statements.length = 0;
    const rawNs: number[] = [];
    const wrappedNs: number[] = [];
    for (let i = 0; i < plan.cpuRounds; i++) {
      rawNs.push(await timeCalls(raw, calls, concurrency, limit));
      wrappedNs.push(await timeCalls(wrapped, calls, concurrency, limit));
      // The fake records every statement; keep that array from growing across rounds.
      fake.statements.length = 0;
      // Calls over the fake never leave the microtask queue, so timers (opossum's bucket
      // rotation among them) only run between rounds.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const rawMedianNs = median(rawNs);
    const wrappedMedianNs = median(wrappedNs);
    return {
      concurrency,
      calls,
      rounds: plan.cpuRounds,
      rawNs,
      wrappedNs,
      rawMedianNs,
      wrappedMedianNs,
      overheadNs: wrappedMedianNs - rawMedianNs,
      medianPairOverheadNs: median(wrappedNs.map((w, i) => w - rawNs[i]!)),
      ratio: wrappedMedianNs / rawMedianNs,
      medianPairRatio: median(wrappedNs.map((w, i) => w / rawNs[i]!)),
    };
  } finally {
    // Bounded: after a failed round a call may still be in flight.
    await db.end({ timeout: 1_000 });
  }
}
