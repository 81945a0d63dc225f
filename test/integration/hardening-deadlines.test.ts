/**
 * Hardening (issue 9): a call's `timeout` and `signal` hold inside `db.session()` and with
 * `captureToken`, on the real cluster. The call rejects with E_TIMEOUT (or E_ABORTED) instead of
 * resolving when the statement ends, and the statement is cancelled on the server: a moment later
 * pg_stat_activity shows it no longer running, long before its sleep would have ended.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { consistencyToken, ResilientPool } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';
import { bounded, guardEachTest, settle } from '../support/guards.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 0 });

/**
 * Seconds the statement sleeps: far longer than its 300 ms deadline plus the look afterwards, so
 * a statement that was not cancelled is still running when the test looks.
 */
const SLEEP_S = 5;
const DEADLINE_MS = 300;

// ---- guards shared by every test of the file -------------------------------------------------

const open: ResilientPool[] = [];
const pools: pg.Pool[] = [];
/** A pool of the test's own for looking at pg_stat_activity; ended after each test. */
let admin: pg.Pool | undefined;

guardEachTest(() => {
  admin = undefined;
  return Promise.all([
    ...open.splice(0).map((db) => db.end({ timeout: 2_000 })),
    ...pools.splice(0).map((p) => p.end().catch(() => {})),
  ]);
});

/** Statements running on the primary whose text contains `marker`. */
async function running(marker: string): Promise<number> {
  admin ??= (() => {
    const pool = handle.cluster.primary.createPool({ max: 1 });
    pools.push(pool);
    return pool;
  })();
  const { rows } = await bounded(
    admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE state = 'active' AND pid <> pg_backend_pid() AND strpos(query, $1) > 0`,
      [marker],
    ),
    5_000,
    'looking at pg_stat_activity',
  );
  return rows[0]?.n ?? 0;
}

function makeDb(): ResilientPool {
  const db = new ResilientPool({
    primary: handle.cluster.primary.createPool({ max: 2 }),
    logger: false,
  });
  open.push(db);
  return db;
}

let seq = 0;

interface Case {
  name: string;
  code: 'E_TIMEOUT' | 'E_ABORTED';
  run(db: ResilientPool, sql: string, signal: AbortSignal): Promise<unknown>;
}

const cases: Case[] = [
  {
    name: 'write() with a timeout inside db.session()',
    code: 'E_TIMEOUT',
    run: (db, sql) => db.session(() => db.write(sql, [], { timeout: DEADLINE_MS })),
  },
  {
    name: 'write() with captureToken and a timeout',
    code: 'E_TIMEOUT',
    run: (db, sql) => db.write(sql, [], { captureToken: true, timeout: DEADLINE_MS }),
  },
  {
    name: 'read() with a timeout inside db.session()',
    code: 'E_TIMEOUT',
    run: (db, sql) => db.session(() => db.read(sql, [], { timeout: DEADLINE_MS })),
  },
  {
    name: 'write() with a signal inside db.session()',
    code: 'E_ABORTED',
    run: (db, sql, signal) => db.session(() => db.write(sql, [], { signal })),
  },
  {
    name: 'write() with captureToken and a signal',
    code: 'E_ABORTED',
    run: (db, sql, signal) => db.write(sql, [], { captureToken: true, signal }),
  },
  {
    name: 'write() inside db.session() after an earlier write recorded a token',
    code: 'E_TIMEOUT',
    run: (db, sql) =>
      db.session(async () => {
        const first = await db.write('SELECT 1');
        expect(consistencyToken(first)).toBeDefined();
        return db.write(sql, [], { timeout: DEADLINE_MS });
      }),
  },
];

describe('deadlines hold inside sessions and with captureToken, and cancel on the server', () => {
  for (const c of cases) {
    it(`${c.name}: rejects with ${c.code} and the statement is cancelled`, async () => {
      const db = makeDb();
      // A warm connection, so the deadline falls while the statement runs, not while connecting.
      await bounded(db.write('SELECT 1'), 5_000, 'warming the pool');
      const marker = `hard_deadline_${process.pid}_${++seq}`;
      const sql = `SELECT pg_sleep(${SLEEP_S}) /* ${marker} */`;
      const controller = new AbortController();
      const call = settle(c.run(db, sql, controller.signal));
      if (c.code === 'E_ABORTED') {
        await until('the statement to run on the server', async () => (await running(marker)) > 0, {
          timeoutMs: 5_000,
          intervalMs: 20,
        });
        controller.abort();
      }
      const outcome = await bounded(call, 3_000, c.name);
      expect(outcome.ok, `${c.name} resolved instead of rejecting`).toBe(false);
      const error = (outcome as { error: unknown }).error;
      expect((error as { code?: unknown }).code, String(error)).toBe(c.code);
      // Cancelled on the server: gone long before its sleep would have ended.
      await until(
        'the statement to stop running on the server',
        async () => (await running(marker)) === 0,
        {
          timeoutMs: 2_000,
          intervalMs: 50,
        },
      );
      // The pool goes on.
      const next = await bounded(db.write('SELECT 1 AS one'), 5_000, 'the next write');
      expect(next.rows).toEqual([{ one: 1 }]);
      await until('nothing in flight', () => db.stats().endpoints[0]?.inFlight === 0, {
        timeoutMs: 5_000,
      });
    });
  }
});
