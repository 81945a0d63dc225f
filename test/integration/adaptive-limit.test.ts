/**
 * The adaptive concurrency limit (issue 12) on the real cluster: overload at twice the server's
 * capacity.
 *
 * The server's capacity is made explicit: every statement takes one of SLOTS advisory locks in
 * turn (a sequence hands them out round-robin) and holds it for SERVICE_MS, so at most SLOTS
 * statements run at once and the others queue inside PostgreSQL, the way statements queue for
 * CPU or I/O on a saturated server. The pool is four times larger than that, so a fixed limit
 * lets every connection's statement in and the time on the server grows with the load; the
 * adaptive limit should find the capacity and refuse the excess at once.
 *
 * Offered load: callers arriving at twice the rate the server can serve (open loop), after a
 * phase of load the server keeps up with. The test prints the figures (unloaded p99, admitted
 * p99, refusal cost, the limit over time) and asserts only invariants: the limit went down under
 * overload and up again after it, every refusal is a typed QueueFullError, every call settled,
 * and nothing leaked (no permit, no checked-out client, no statement left on the server).
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueFullError, ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';
import { bounded, guardEachTest } from '../support/guards.js';

const handle = useCluster({ replicas: 0 });

/** Statements the server runs at once. */
const SLOTS = 8;
/** Each statement's own work, in ms. */
const SERVICE_MS = 20;
/** What the server can serve per second. */
const CAPACITY_PER_S = (SLOTS * 1_000) / SERVICE_MS;
const POOL_MAX = SLOTS * 4;
const WORK = `SELECT rp_al_work(${SLOTS}, ${SERVICE_MS}) AS ok`;

let admin: pg.Pool;
const open: ResilientPool[] = [];

beforeAll(async () => {
  admin = handle.cluster.primary.createPool({ max: 1 });
  await admin.query('CREATE SEQUENCE IF NOT EXISTS rp_al_slot');
  await admin.query(`
    CREATE OR REPLACE FUNCTION rp_al_work(slots int, ms int) RETURNS int LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock(7345, (nextval('rp_al_slot') % slots)::int);
      PERFORM pg_sleep(ms / 1000.0);
      RETURN 1;
    END $$`);
});

afterAll(async () => {
  await admin?.end();
});

guardEachTest(() => Promise.all(open.splice(0).map((db) => db.end({ timeout: 5_000 }))));

function track(options: Partial<ResilientPoolOptions>): ResilientPool {
  const db = new ResilientPool({
    primary: handle.cluster.primary.createPool({ max: POOL_MAX }),
    logger: false,
    retry: { retries: 0 },
    ...options,
  });
  open.push(db);
  return db;
}

interface Outcome {
  ok: boolean;
  /** From the call to its settling. */
  ms: number;
  /** From the call to its return (a refusal is decided before any promise exists). */
  returnedMs: number;
  error?: unknown;
  /** performance.now() when the call started. */
  at: number;
}

/** One timed call; never rejects. */
async function timed(db: ResilientPool): Promise<Outcome> {
  const at = performance.now();
  const call = db.query(WORK);
  const returnedMs = performance.now() - at;
  try {
    await call;
    return { ok: true, ms: performance.now() - at, returnedMs, at };
  } catch (error) {
    return { ok: false, ms: performance.now() - at, returnedMs, error, at };
  }
}

/** `callers` loops, each making one call after another, for `ms`. */
async function closedLoop(db: ResilientPool, callers: number, ms: number): Promise<Outcome[]> {
  const until = performance.now() + ms;
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < until) {
        const outcome = await timed(db);
        outcomes.push(outcome);
        // A refused caller backs off a little instead of spinning on the refusal.
        if (!outcome.ok) await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }),
  );
  return outcomes;
}

/** Calls started at `perSecond` (catching up after a late timer), for `ms`; all awaited. */
async function openLoop(db: ResilientPool, perSecond: number, ms: number): Promise<Outcome[]> {
  const calls: Promise<Outcome>[] = [];
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      const due = Math.floor((Math.min(elapsed, ms) * perSecond) / 1_000);
      while (calls.length < due) calls.push(timed(db));
      if (elapsed >= ms) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
  return Promise.all(calls);
}

/** Samples the endpoint's limit every 20 ms while `work` runs. */
async function watchLimit<T>(db: ResilientPool, work: Promise<T>): Promise<[T, number[]]> {
  const limits: number[] = [];
  const timer = setInterval(() => limits.push(db.stats().endpoints[0]?.limit ?? -1), 20);
  try {
    return [await work, limits];
  } finally {
    clearInterval(timer);
  }
}

function percentile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

const ms = (v: number) => `${v.toFixed(1)} ms`;
const us = (v: number) => `${(v * 1_000).toFixed(0)} µs`;

function summary(label: string, outcomes: Outcome[], seconds: number): string {
  const admitted = outcomes.filter((o) => o.ok).map((o) => o.ms);
  const refused = outcomes.filter((o) => !o.ok);
  const returned = refused.map((o) => o.returnedMs);
  const settled = refused.map((o) => o.ms);
  return [
    `${label}: ${outcomes.length} calls (${(outcomes.length / seconds).toFixed(0)}/s offered),`,
    `${admitted.length} admitted (${(admitted.length / seconds).toFixed(0)}/s)`,
    `p50 ${ms(percentile(admitted, 0.5))} p99 ${ms(percentile(admitted, 0.99))},`,
    `${refused.length} refused`,
    refused.length > 0
      ? `(returned p50 ${us(percentile(returned, 0.5))} p99 ${us(percentile(returned, 0.99))},` +
        ` settled p50 ${us(percentile(settled, 0.5))} p99 ${us(percentile(settled, 0.99))})`
      : '',
  ].join(' ');
}

/** Nothing left behind: no permit held, nobody queued, no client out, nothing on the server. */
async function expectNothingLeaked(db: ResilientPool): Promise<void> {
  const [endpoint] = db.stats().endpoints;
  expect(endpoint).toMatchObject({ inFlight: 0, queued: 0, pending: 0, inUse: 0 });
  expect(endpoint?.breaker).toBe('closed');
  await bounded(db.end({ timeout: 5_000 }), 10_000, 'end()');
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE query LIKE '%rp_al_work(%' AND pid <> pg_backend_pid() AND state <> 'idle'`,
  );
  expect(rows[0]?.n, 'statements still running on the server after end()').toBe(0);
}

function expectTypedRefusals(outcomes: Outcome[]): void {
  const failures = outcomes.filter((o) => !o.ok);
  for (const f of failures) {
    expect(f.error, 'every refusal is a QueueFullError').toBeInstanceOf(QueueFullError);
    expect((f.error as QueueFullError).code).toBe('E_QUEUE_FULL');
  }
}

describe('adaptive concurrency limit under twice the server capacity', () => {
  it('finds the capacity, refuses the excess at once, and recovers after', async () => {
    const overloadMs = 4_000;
    const lines: string[] = [
      `server: ${SLOTS} slots of ${SERVICE_MS} ms (${CAPACITY_PER_S}/s); pool max ${POOL_MAX}; queue.maxWaiting 0`,
    ];

    // For comparison: the same overload on a fixed limit (the pool's size).
    const fixed = track({ queue: { maxWaiting: 0 } });
    await closedLoop(fixed, SLOTS / 2, 1_000);
    const fixedOverload = await openLoop(fixed, CAPACITY_PER_S * 2, overloadMs);
    lines.push(summary('fixed limit, overload 2x  ', fixedOverload, overloadMs / 1_000));
    expectTypedRefusals(fixedOverload);
    await expectNothingLeaked(fixed);

    const db = track({ queue: { maxWaiting: 0, adaptiveLimit: true } });
    // Load the server keeps up with: the baseline is learnt, the limit stays at the pool size.
    const [unloaded, limitsUnloaded] = await watchLimit(db, closedLoop(db, SLOTS / 2, 2_000));
    const unloadedP99 = percentile(
      unloaded.filter((o) => o.ok).map((o) => o.ms),
      0.99,
    );
    lines.push(summary('adaptive, unloaded         ', unloaded, 2));
    const [overload, limitsOverload] = await watchLimit(
      db,
      openLoop(db, CAPACITY_PER_S * 2, overloadMs),
    );
    lines.push(summary('adaptive, overload 2x      ', overload, overloadMs / 1_000));
    // After the limit has settled (the first second is the descent).
    const settledFrom = (overload[0]?.at ?? 0) + 1_000;
    const settled = overload.filter((o) => o.at >= settledFrom);
    lines.push(summary('adaptive, overload, >1 s in', settled, (overloadMs - 1_000) / 1_000));
    const lowest = Math.min(...limitsOverload);
    const afterOverload = db.stats().endpoints[0]?.limit ?? -1;
    // Back to the unloaded traffic: the limit grows back toward the pool's size.
    const [recovery, limitsRecovery] = await watchLimit(db, closedLoop(db, SLOTS / 2, 3_000));
    lines.push(summary('adaptive, recovery         ', recovery, 3));
    const final = db.stats().endpoints[0]?.limit ?? -1;
    const admittedP99 = percentile(
      settled.filter((o) => o.ok).map((o) => o.ms),
      0.99,
    );
    lines.push(
      `limit: unloaded ${Math.min(...limitsUnloaded)}-${Math.max(...limitsUnloaded)}, ` +
        `lowest under overload ${lowest}, at its end ${afterOverload}, ` +
        `after recovery ${final} (highest ${Math.max(...limitsRecovery)})`,
      `admitted p99 / unloaded p99 = ${(admittedP99 / unloadedP99).toFixed(2)} (target <= 2)`,
      `stats: ${JSON.stringify(db.stats().endpoints[0]?.adaptiveLimit)}`,
    );
    console.log(`adaptive limit:\n  ${lines.join('\n  ')}`);

    // Invariants only; the figures above are shown, not asserted (2 noisy cores).
    expect(Math.max(...limitsUnloaded)).toBe(POOL_MAX);
    expect(lowest, 'the limit went down under overload').toBeLessThan(POOL_MAX);
    expect(final, 'the limit went up again after the overload').toBeGreaterThan(lowest);
    for (const limit of [...limitsUnloaded, ...limitsOverload, ...limitsRecovery]) {
      expect(limit).toBeGreaterThanOrEqual(1);
      expect(limit).toBeLessThanOrEqual(POOL_MAX);
    }
    expect(
      overload.some((o) => !o.ok),
      'the excess was refused',
    ).toBe(true);
    for (const outcomes of [unloaded, overload, recovery]) expectTypedRefusals(outcomes);
    expect(db.stats().endpoints[0]?.rejected['queue-full']).toBe(
      [...unloaded, ...overload, ...recovery].filter((o) => !o.ok).length,
    );
    await expectNothingLeaked(db);
  }, 90_000);
});
