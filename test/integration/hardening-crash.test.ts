/**
 * Hardening (issue 9): connections lost in the middle of a call, on the real cluster.
 *
 * - A connection reset mid-statement (ChaosProxy in front of the primary) rejects the call with
 *   the socket's or pg's error; nothing reaches uncaughtException or unhandledRejection.
 * - A replica SIGKILLed while reads run on it: every read settles (a read that ran on a hot standby
 *   wrote nothing, so it is re-run on the primary), and the pools return to normal.
 * - `queryRouting: 'auto'` with no usable replica: a read-classified statement whose function
 *   writes runs on the primary; cut mid-statement, it is not re-sent (its side effect happens
 *   exactly once) and the call rejects.
 *
 * Every await is bounded, so a hang fails its test with a message instead of timing out the file.
 */
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { type QueryResultLike, ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { classifySql } from '../../src/routing/classify-sql.js';
import { ChaosProxy, type ClusterNode } from '../../src/testing/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { bounded, guardEachTest, type Settled, settle } from '../support/guards.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 1 });

// ---- guards shared by every test of the file -------------------------------------------------

/** Uncaught exceptions and unhandled rejections seen during the current test. */
const open: ResilientPool[] = [];
const proxies: ChaosProxy[] = [];

guardEachTest(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 2_000 })));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

function track(options: ResilientPoolOptions): ResilientPool {
  const db = new ResilientPool({ logger: false, ...options });
  open.push(db);
  return db;
}

/** A pool that reaches `node` through a new ChaosProxy, with the node's credentials. */
async function poolViaProxy(
  node: ClusterNode,
  config: pg.PoolConfig = {},
): Promise<{ proxy: ChaosProxy; pool: pg.Pool }> {
  const proxy = await ChaosProxy.start({ target: { host: node.host, port: node.port } });
  proxies.push(proxy);
  const url = new URL(node.url);
  url.hostname = proxy.host;
  url.port = String(proxy.port);
  return { proxy, pool: node.createPool({ ...config, connectionString: url.toString() }) };
}

/** A raw connection straight to `node`, for looking from outside. */
async function admin<T>(node: ClusterNode, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: node.url });
  client.on('error', () => {});
  await bounded(client.connect(), 5_000, `connecting to ${node.name}`);
  try {
    return await bounded(work(client), 10_000, `an admin query on ${node.name}`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Statements running on `node` whose text contains `marker` (other than the asking one). */
function running(node: ClusterNode, marker: string): Promise<number> {
  return admin(node, async (c) => {
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE state = 'active' AND pid <> pg_backend_pid() AND strpos(query, $1) > 0`,
      [marker],
    );
    return rows[0]?.n ?? 0;
  });
}

function untilRunning(node: ClusterNode, marker: string, count: number): Promise<unknown> {
  return until(
    `${count} statement(s) with "${marker}" running on ${node.name}`,
    async () => (await running(node, marker)) >= count,
    { timeoutMs: 10_000 },
  );
}

/** The call rejected with an Error that says what happened: a string code, or pg's message. */
function expectCleanRejection(outcome: Settled<unknown>, what: string): void {
  expect(outcome.ok, `${what} resolved, but its connection was cut`).toBe(false);
  const error = (outcome as { error: unknown }).error;
  expect(error, what).toBeInstanceOf(Error);
  const { code, message } = error as { code?: unknown; message: string };
  expect(
    typeof code === 'string' || /Connection terminated/.test(message),
    `${what}: ${String(error)} has neither a code nor pg's 'Connection terminated' message`,
  ).toBe(true);
}

/** Every wrapped pool has its clients idle and nobody waiting; nothing in flight or queued. */
async function expectQuiet(db: ResilientPool, pools: readonly pg.Pool[]): Promise<void> {
  await until(
    'every client back in its pool and nothing in flight',
    () =>
      pools.every((p) => p.waitingCount === 0 && p.idleCount === p.totalCount) &&
      db.stats().endpoints.every((e) => e.inFlight === 0 && e.queued === 0),
    { timeoutMs: 5_000 },
  ).catch((err: Error) => {
    const pg = pools.map((p) => ({
      total: p.totalCount,
      idle: p.idleCount,
      waiting: p.waitingCount,
    }));
    const ours = db
      .stats()
      .endpoints.map((e) => ({ name: e.name, inFlight: e.inFlight, queued: e.queued }));
    throw new Error(
      `${err.message}: pools ${JSON.stringify(pg)}, endpoints ${JSON.stringify(ours)}`,
    );
  });
}

// ---- the tests -------------------------------------------------------------------------------

describe.skipIf(!handle.canControlProcesses)(`lost connections (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('a reset mid-statement rejects query() cleanly, and the pool goes on', async () => {
    const { proxy, pool } = await poolViaProxy(handle.cluster.primary, { max: 2 });
    const db = track({ primary: pool });
    const marker = 'hard_crash_reset';
    const call = settle(db.query(`SELECT pg_sleep(1) /* ${marker} */`));
    await untilRunning(handle.cluster.primary, marker, 1);
    expect(proxy.reset()).toBeGreaterThan(0);
    const outcome = await bounded(call, 5_000, 'query() whose connection was reset');
    expectCleanRejection(outcome, 'query() whose connection was reset');
    await expectQuiet(db, [pool]);
    const next = await bounded(db.query('SELECT 1 AS one'), 5_000, 'the next query()');
    expect(next.rows).toEqual([{ one: 1 }]);
  });

  it('SIGKILL of a replica while three reads run: every read settles and the pools recover', async () => {
    const { primary, replicas } = handle.cluster;
    const replica = replicas[0]!;
    const primaryPool = primary.createPool({ max: 4 });
    const replicaPool = replica.createPool({ max: 4 });
    const db = track({
      primary: primaryPool,
      replicas: [replicaPool],
      health: { intervalMs: 200, timeoutMs: 500 },
    });
    await until(
      'the replica to be probed healthy',
      () => db.stats().endpoints[1]?.health === 'healthy',
      {
        timeoutMs: 10_000,
      },
    );
    const marker = 'hard_crash_kill';
    const reads = [1, 2, 3].map(() =>
      settle(db.read<{ v: string }>(`SELECT 'done'::text AS v FROM pg_sleep(1) /* ${marker} */`)),
    );
    await untilRunning(replica, marker, 3);
    let outcomes: Settled<QueryResultLike<{ v: string }>>[];
    try {
      await bounded(replica.kill(), 10_000, 'killing the replica');
      outcomes = (await bounded(Promise.all(reads), 10_000, 'the three reads')) as typeof outcomes;
    } finally {
      if (!replica.isRunning()) await bounded(replica.start(), 30_000, 'restarting the replica');
    }
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.ok) expect(outcome.value.rows).toEqual([{ v: 'done' }]);
      else expectCleanRejection(outcome, `read ${i + 1}`);
    }
    // Each ran on a hot standby, which cannot write: re-running it on the primary is safe.
    expect(
      outcomes.filter((o) => !o.ok).map((o) => String((o as { error: unknown }).error)),
      'reads that ran on the killed hot standby should be re-run on the primary',
    ).toEqual([]);
    await expectQuiet(db, [primaryPool, replicaPool]);
    const next = await bounded(db.write('SELECT 1 AS one'), 5_000, 'a write afterwards');
    expect(next.rows).toEqual([{ one: 1 }]);
  });
});

describe.skipIf(!handle.canControlProcesses)(
  `queryRouting 'auto': a read-classified statement that writes is never re-sent (${NEEDS_LOCAL_CLUSTER})`,
  () => {
    const SQL = 'SELECT hard_side_effect_f() AS n';

    beforeAll(async () => {
      await admin(handle.cluster.primary, async (c) => {
        await c.query('CREATE TABLE IF NOT EXISTS hard_side_effect (id serial PRIMARY KEY)');
        await c.query(`CREATE OR REPLACE FUNCTION hard_side_effect_f() RETURNS int
          LANGUAGE plpgsql AS $$
          BEGIN
            INSERT INTO hard_side_effect DEFAULT VALUES;
            PERFORM pg_sleep(0.5);
            RETURN 1;
          END $$`);
      });
    });

    const rowCount = () =>
      admin(handle.cluster.primary, async (c) => {
        const { rows } = await c.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM hard_side_effect',
        );
        return rows[0]!.n;
      });

    /** Runs SQL through `db`, resets its connection mid-statement, checks it ran exactly once. */
    async function cutOnce(db: ResilientPool, proxy: ChaosProxy): Promise<void> {
      // The precondition of the case: the classifier calls it a read (it cannot see the INSERT).
      expect(classifySql(SQL)).toBe('read');
      const before = await rowCount();
      const call = settle(db.query(SQL));
      await untilRunning(handle.cluster.primary, 'hard_side_effect_f', 1);
      expect(proxy.reset()).toBeGreaterThan(0);
      const outcome = await bounded(
        call,
        10_000,
        'the auto-routed query() whose connection was cut',
      );
      expectCleanRejection(outcome, 'the auto-routed query() whose connection was cut');
      // The cut statement goes on in the server until pg_sleep ends; a re-sent copy would too.
      await until(
        'no hard_side_effect_f() left running on the primary',
        async () => (await running(handle.cluster.primary, 'hard_side_effect_f')) === 0,
        { timeoutMs: 10_000 },
      );
      expect(await rowCount(), 'rows the function inserted: it ran once, and was not re-sent').toBe(
        before + 1,
      );
    }

    it('with no replicas configured', async () => {
      const { proxy, pool } = await poolViaProxy(handle.cluster.primary, { max: 2 });
      const db = track({ primary: pool, routing: { queryRouting: 'auto' } });
      await cutOnce(db, proxy);
      const next = await bounded(db.query('SELECT 1 AS one'), 5_000, 'the next query()');
      expect(next.rows).toEqual([{ one: 1 }]);
    });

    it('with the only replica stopped (reads fall back to the primary)', async () => {
      const replica = handle.cluster.replicas[0]!;
      const { proxy, pool } = await poolViaProxy(handle.cluster.primary, { max: 2 });
      const db = track({
        primary: pool,
        replicas: [replica.createPool({ max: 2 })],
        routing: { queryRouting: 'auto' },
        health: { intervalMs: 200, timeoutMs: 500 },
      });
      await bounded(replica.stop(), 15_000, 'stopping the replica');
      try {
        await until(
          'the stopped replica to be ejected',
          () => db.stats().endpoints[1]?.health === 'ejected',
          { timeoutMs: 10_000 },
        );
        await cutOnce(db, proxy);
      } finally {
        if (!replica.isRunning()) await bounded(replica.start(), 30_000, 'restarting the replica');
      }
    });
  },
);
