/**
 * Hardening (issue 9): a frozen server (SIGSTOP), on the real cluster, with default options plus
 * fast health probes (`health: { intervalMs: 500, timeoutMs: 500 }`).
 *
 * - A lone primary with warm connections, frozen under eight writes: every write settles with a
 *   typed error (a string `code`), a 'down' event fires for the primary, new calls fail fast with
 *   E_ENDPOINT_DOWN while it is stopped, and after `resume()` an 'up' event fires and writes
 *   succeed again.
 * - The same with a replica configured: reads go on on the replica meanwhile.
 * - A frozen replica: a read in flight on it is re-run on the primary and resolves (it ran on a
 *   hot standby, which cannot write), the replica is declared down and comes back up.
 *
 * The node is always resumed in `finally`. Every await is bounded.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  type QueryResultLike,
  ResilientPool,
  type ResilientPoolEvents,
  type ResilientPoolOptions,
} from '../../src/index.js';
import type { ClusterNode } from '../../src/testing/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { bounded, codeOf, guardEachTest, type Settled, settle } from '../support/guards.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 1 });

const HEALTH = { intervalMs: 500, timeoutMs: 500 };
/** Codes a call may end with while its server is frozen. */
const FROZEN_CODES = [
  'E_ENDPOINT_DOWN',
  'E_OUTCOME_UNKNOWN',
  'E_CIRCUIT_OPEN',
  'E_ACQUIRE_TIMEOUT',
];

// ---- guards shared by every test of the file -------------------------------------------------

const open: ResilientPool[] = [];

guardEachTest(() => {
  for (const node of handle.cluster.nodes) node.resume();
  return Promise.all(open.splice(0).map((db) => db.end({ timeout: 2_000 })));
});

interface Watched {
  db: ResilientPool;
  pools: pg.Pool[];
  downs: ResilientPoolEvents['down'][];
  ups: ResilientPoolEvents['up'][];
}

function makeDb(withReplica: boolean, options: Partial<ResilientPoolOptions> = {}): Watched {
  const { primary, replicas } = handle.cluster;
  // pg.Pool's defaults (max 10): what an application would have.
  const pools = [primary.createPool(), ...(withReplica ? [replicas[0]!.createPool()] : [])];
  const db = new ResilientPool({
    primary: pools[0]!,
    replicas: pools.slice(1),
    logger: false,
    health: HEALTH,
    ...options,
  });
  open.push(db);
  const watched: Watched = { db, pools, downs: [], ups: [] };
  db.on('down', (e) => watched.downs.push(e));
  db.on('up', (e) => watched.ups.push(e));
  return watched;
}

const PORT = "SELECT current_setting('port')::int AS port";

/** Writes succeed again (the endpoint may first have to be probed up and its circuit close). */
function untilWritesSucceed(db: ResilientPool): Promise<unknown> {
  return until(
    'writes to succeed again',
    () =>
      bounded(db.write('SELECT 1 AS one'), 5_000, 'a write after resume()').then(
        (r) => r.rows[0]?.one === 1,
        () => false,
      ),
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

/** The primary, warmed with five connections, frozen under eight writes. */
async function freezePrimaryUnderWrites(w: Watched, node: ClusterNode): Promise<void> {
  const { db, pools, downs } = w;
  await bounded(
    Promise.all(Array.from({ length: 5 }, () => db.write('SELECT pg_sleep(0.05)'))),
    10_000,
    'warming five connections',
  );
  expect(pools[0]!.totalCount).toBe(5);
  node.pause();
  try {
    const writes = Array.from({ length: 8 }, () => settle(db.write('select 1')));
    const outcomes = await bounded(
      Promise.all(writes),
      20_000,
      'the eight writes to the frozen primary',
    );
    for (const [i, outcome] of outcomes.entries()) {
      expect(outcome.ok, `write ${i + 1} resolved on a frozen server`).toBe(false);
      const code = codeOf(outcome);
      expect(typeof code, `write ${i + 1}: ${String((outcome as { error: unknown }).error)}`).toBe(
        'string',
      );
      expect(FROZEN_CODES, `write ${i + 1}`).toContain(code);
    }
    await until('a down event for the primary', () => downs.length > 0, { timeoutMs: 10_000 });
    expect(downs[0]).toEqual({ endpoint: 'primary', role: 'primary', reason: expect.any(String) });
    expect(db.stats().endpoints[0]?.down).toBe(true);
    // While it is stopped, new calls are refused at once.
    for (let i = 0; i < 3; i++) {
      const refused = await bounded(settle(db.write('select 1')), 2_000, 'a write while down');
      expect(codeOf(refused)).toBe('E_ENDPOINT_DOWN');
    }
  } finally {
    node.resume();
  }
  await until('an up event for the primary', () => w.ups.length > 0, { timeoutMs: 20_000 });
  expect(w.ups[0]).toEqual({ endpoint: 'primary', role: 'primary', reason: expect.any(String) });
  await untilWritesSucceed(db);
  expect(db.stats().endpoints[0]?.down).toBe(false);
}

describe.skipIf(!handle.canControlProcesses)(`a frozen server (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('a lone primary: eight writes settle typed, down fires, calls fail fast, up after resume', async () => {
    const w = makeDb(false);
    await freezePrimaryUnderWrites(w, handle.cluster.primary);
  });

  it('a primary with a replica: the same for writes, while reads go on on the replica', async () => {
    const w = makeDb(true);
    const replica = handle.cluster.replicas[0]!;
    await until(
      'the replica to be probed healthy',
      () => w.db.stats().endpoints[1]?.health === 'healthy',
      {
        timeoutMs: 10_000,
      },
    );
    // Reads made while the primary is frozen and down are served by the replica.
    const readsDuringFreeze: Array<Promise<Settled<QueryResultLike<{ port: number }>>>> = [];
    const onDown = () => {
      for (let i = 0; i < 3; i++) readsDuringFreeze.push(settle(w.db.read<{ port: number }>(PORT)));
    };
    w.db.once('down', onDown);
    await freezePrimaryUnderWrites(w, handle.cluster.primary);
    const reads = await bounded(
      Promise.all(readsDuringFreeze),
      10_000,
      'reads while the primary was down',
    );
    expect(reads).toHaveLength(3);
    for (const read of reads) {
      expect(read.ok ? read.value.rows[0]?.port : String((read as { error: unknown }).error)).toBe(
        replica.port,
      );
    }
  });

  it('a frozen replica: its read in flight is re-run on the primary and resolves; down, then up', async () => {
    const w = makeDb(true);
    const { primary, replicas } = handle.cluster;
    const replica = replicas[0]!;
    await until(
      'the replica to be probed healthy',
      () => w.db.stats().endpoints[1]?.health === 'healthy',
      {
        timeoutMs: 10_000,
      },
    );
    // A read that will be in flight on the replica when it freezes.
    const marker = 'hard_frozen_replica_read';
    const inFlight = settle(
      w.db.read<{ port: number }>(
        `SELECT current_setting('port')::int AS port FROM pg_sleep(0.3) /* ${marker} */`,
      ),
    );
    const admin = replica.createPool({ max: 1 });
    try {
      await until(
        'the read to run on the replica',
        async () => {
          const { rows } = await bounded(
            admin.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_stat_activity
                WHERE state = 'active' AND pid <> pg_backend_pid() AND strpos(query, $1) > 0`,
              [marker],
            ),
            5_000,
            'looking at the replica',
          );
          return rows[0]!.n === 1;
        },
        { timeoutMs: 10_000, intervalMs: 20 },
      );
    } finally {
      await admin.end().catch(() => {});
    }
    replica.pause();
    try {
      const outcome = await bounded(inFlight, 15_000, 'the read in flight on the frozen replica');
      expect(
        outcome.ok ? outcome.value.rows[0]?.port : String((outcome as { error: unknown }).error),
        'the read should be re-run on the primary',
      ).toBe(primary.port);
      await until('a down event for the replica', () => w.downs.length > 0, { timeoutMs: 10_000 });
      expect(w.downs[0]).toEqual({
        endpoint: 'replica-1',
        role: 'replica',
        reason: expect.any(String),
      });
      // Meanwhile reads go to the primary, and writes are not disturbed.
      const read = await bounded(w.db.read<{ port: number }>(PORT), 5_000, 'a read while down');
      expect(read.rows[0]?.port).toBe(primary.port);
      await expect(bounded(w.db.write('SELECT 1 AS one'), 5_000, 'a write')).resolves.toMatchObject(
        {
          rows: [{ one: 1 }],
        },
      );
    } finally {
      replica.resume();
    }
    await until('an up event for the replica', () => w.ups.length > 0, { timeoutMs: 20_000 });
    expect(w.ups[0]).toMatchObject({ endpoint: 'replica-1', role: 'replica' });
    await until(
      'reads to reach the replica again',
      async () =>
        (await bounded(w.db.read<{ port: number }>(PORT), 5_000, 'a read after resume()')).rows[0]
          ?.port === replica.port,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  });
});
