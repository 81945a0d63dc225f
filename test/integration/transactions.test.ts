/**
 * Transactions and connection hygiene on a real primary: conflicts re-run to the right totals,
 * deadlocks resolved, a lost COMMIT reported as unknown, timeouts that cancel on the server,
 * dead pooled connections replaced, leaks reported, open transactions rolled back.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ResilientPool,
  type ResilientPoolOptions,
  TimeoutError,
  TransactionOutcomeUnknownError,
} from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 1 });
const open: ResilientPool[] = [];

function makeDb(options: Partial<ResilientPoolOptions> = {}, config: pg.PoolConfig = {}) {
  const pool = handle.cluster.primary.createPool({ max: 8, ...config });
  const db = new ResilientPool({ primary: pool, logger: false, ...options });
  open.push(db);
  return { db, pool };
}

/** A separate connection for looking at the server from outside the pool under test. */
async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: handle.cluster.primary.url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 5_000 })));
});

describe('transactions', () => {
  it('concurrent serializable increments that conflict all commit, with the right total', async () => {
    const { db } = makeDb();
    await db.write('CREATE TABLE IF NOT EXISTS tx_counter (id int primary key, n int not null)');
    await db.write('INSERT INTO tx_counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0');
    const runs: number[] = [];
    await Promise.all(
      Array.from({ length: 12 }, () =>
        db.transaction(
          async (tx, { attempt }) => {
            runs.push(attempt);
            const { rows } = await tx.query<{ n: number }>('SELECT n FROM tx_counter WHERE id = 1');
            await tx.query('SELECT pg_sleep(0.01)');
            await tx.query('UPDATE tx_counter SET n = $1 WHERE id = 1', [rows[0]!.n + 1]);
          },
          { isolation: 'serializable', retries: 30 },
        ),
      ),
    );
    const { rows } = await db.write<{ n: number }>('SELECT n FROM tx_counter WHERE id = 1');
    // No lost update, no double increment: exactly one per call, however many re-runs it took.
    expect(rows[0]?.n).toBe(12);
    expect(runs.filter((a) => a > 1).length).toBeGreaterThan(0);
  });

  it('a deadlock between two transactions is resolved by re-running the victim', async () => {
    const { db } = makeDb();
    await db.write('CREATE TABLE IF NOT EXISTS tx_lock (id int primary key, v int)');
    await db.write('INSERT INTO tx_lock VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING');
    let bothLockedFirst: () => void = () => {};
    const firstLocks = new Promise<void>((resolve) => {
      let n = 0;
      bothLockedFirst = () => {
        if (++n === 2) resolve();
      };
    });
    const transfer = (a: number, b: number) =>
      db.transaction(
        async (tx, { attempt }) => {
          await tx.query('UPDATE tx_lock SET v = v + 1 WHERE id = $1', [a]);
          if (attempt === 1) {
            bothLockedFirst();
            await firstLocks; // both hold their first row: the second UPDATEs deadlock
          }
          await tx.query('UPDATE tx_lock SET v = v + 1 WHERE id = $1', [b]);
          return attempt;
        },
        { retries: 3 },
      );
    const attempts = await Promise.all([transfer(1, 2), transfer(2, 1)]);
    expect(attempts.sort()).toEqual([1, 2]);
    const { rows } = await db.write<{ v: number }>('SELECT v FROM tx_lock ORDER BY id');
    expect(rows.map((r) => r.v)).toEqual([2, 2]);
  });

  it('a transaction left open by user code is rolled back on release', async () => {
    const { db } = makeDb({}, { max: 1 });
    await db.write('CREATE TABLE IF NOT EXISTS tx_open (id int)');
    const client = await db.connect();
    await client.query('BEGIN');
    await client.query('INSERT INTO tx_open VALUES (42)');
    client.release();
    // The only connection is back in the pool, idle and clean.
    // now() equals statement_timestamp() only when this statement began its own transaction.
    const state = await db.write<{ own_tx: boolean; n: number }>(
      'SELECT now() = statement_timestamp() AS own_tx, (SELECT count(*)::int FROM tx_open WHERE id = 42) AS n',
    );
    expect(state.rows[0]).toEqual({ own_tx: true, n: 0 });
  });
});

describe('deadlines', () => {
  it('a timeout on pg_sleep(10) returns within the timeout and the statement is gone from the server', async () => {
    const { db } = makeDb();
    const started = Date.now();
    const err = await db
      .read('SELECT pg_sleep(10) AS slept', [], { timeout: 300 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(5_000); // far below the 10 s statement
    await until('the cancelled statement to leave pg_stat_activity', () =>
      admin(async (c) => {
        const { rows } = await c.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(10)%' AND state = 'active'",
        );
        return rows[0].n === 0;
      }),
    );
  });

  it('a timeout inside a transaction cancels the statement and rolls the work back', async () => {
    const { db } = makeDb();
    await db.write('CREATE TABLE IF NOT EXISTS tx_deadline (id int)');
    const err = await db
      .transaction(
        async (tx) => {
          await tx.query('INSERT INTO tx_deadline VALUES (7)');
          await tx.query('SELECT pg_sleep(10)');
        },
        { timeout: 300 },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    await until('the transaction to be rolled back', () =>
      admin(async (c) => {
        const active = await c.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(10)%' AND state <> 'idle'",
        );
        return active.rows[0].n === 0;
      }),
    );
    const { rows } = await db.write<{ n: number }>(
      'SELECT count(*)::int AS n FROM tx_deadline WHERE id = 7',
    );
    expect(rows[0]?.n).toBe(0);
  });
});

describe('connection hygiene', () => {
  it('with validate.idleAfter, terminating every idle pooled backend is invisible to the next writes', async () => {
    const { db, pool } = makeDb({ validate: { idleAfter: 0 }, retry: { retries: 0 } }, { max: 4 });
    await Promise.all(Array.from({ length: 4 }, () => db.write('SELECT pg_sleep(0.02)')));
    expect(pool.idleCount).toBe(4);
    await admin((c) =>
      c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND state = 'idle'",
      ),
    );
    await db.write('CREATE TABLE IF NOT EXISTS tx_hygiene (id int)');
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => db.write('INSERT INTO tx_hygiene VALUES ($1)', [i])),
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
  });

  it("a failed multi-statement 'BEGIN; ...' through query() never leaves a failed transaction behind", async () => {
    const { db } = makeDb({}, { max: 1 });
    await expect(db.query('BEGIN; SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    // The only connection: it must be idle again, not in a failed transaction (25P02).
    await expect(db.query('SELECT 1 AS ok')).resolves.toMatchObject({ rows: [{ ok: 1 }] });
    const client = await db.connect();
    await client.query('BEGIN');
    await client.query('SELECT 1/0').catch(() => client.release());
    await expect(db.query('SELECT 2 AS ok')).resolves.toMatchObject({ rows: [{ ok: 2 }] });
  });

  it('reports a leaked client with the stack of the call that took it', async () => {
    const { db } = makeDb({ leakDetection: { threshold: 100 } });
    const leaks: Array<{ heldMs: number; acquiredAt: string }> = [];
    db.on('leak', (e) => leaks.push(e));
    const client = await db.connect();
    await until('the leak report', () => leaks.length === 1, { timeoutMs: 5_000 });
    expect(leaks[0]?.heldMs).toBeGreaterThanOrEqual(100);
    expect(leaks[0]?.acquiredAt).toContain('transactions.test.ts');
    client.release();
  });

  it('validate.primaryWritable refuses a server in recovery configured as the primary', async () => {
    const replica = handle.cluster.replicas[0]!.createPool({ max: 2 });
    const db = new ResilientPool({
      primary: replica,
      logger: false,
      validate: { primaryWritable: true },
      retry: { retries: 0 },
    });
    open.push(db);
    await expect(db.write('SELECT 1')).rejects.toMatchObject({
      code: '25006',
      endpoint: 'primary',
    });
    expect(db.stats().endpoints[0]?.failures).toBe(1);
  });
});

describe.skipIf(!handle.canControlProcesses)(`COMMIT interrupted (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('killing the server during COMMIT gives TransactionOutcomeUnknownError; the row is then either there or not', async () => {
    const { db } = makeDb({ retry: { retries: 0 } });
    // A deferred constraint trigger makes COMMIT itself slow, so the kill lands during it.
    await db.write('CREATE TABLE IF NOT EXISTS tx_commit (id int)');
    await db.write(
      'CREATE OR REPLACE FUNCTION tx_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$',
    );
    await db.write('DROP TRIGGER IF EXISTS tx_slow_commit ON tx_commit');
    await db.write(
      'CREATE CONSTRAINT TRIGGER tx_slow_commit AFTER INSERT ON tx_commit DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tx_slow_commit()',
    );
    const primary = handle.cluster.primary;
    let runs = 0;
    const outcome = db
      .transaction(async (tx) => {
        runs++;
        await tx.query('INSERT INTO tx_commit VALUES (1)');
      })
      .catch((e: unknown) => e);
    await until('COMMIT to be running', () =>
      admin(async (c) => {
        const { rows } = await c.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'COMMIT' AND state = 'active'",
        );
        return rows[0].n === 1;
      }),
    );
    await primary.kill();
    const err = await outcome;
    expect(err).toBeInstanceOf(TransactionOutcomeUnknownError);
    expect(runs).toBe(1); // never re-run
    await primary.start();
    const { rows } = await admin((c) =>
      c.query<{ n: number }>('SELECT count(*)::int AS n FROM tx_commit'),
    );
    // The caller had to check: killed mid-trigger, the commit did not happen here.
    expect([0, 1]).toContain(rows[0]?.n);
    console.log(`COMMIT interrupted by SIGKILL: row committed = ${rows[0]?.n === 1}`);
  });
});
