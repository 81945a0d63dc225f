/**
 * Failover buffering on a real cluster.
 *
 * 1. Every node listed as a primary candidate, a steady stream of writes and transactions, the
 *    primary SIGKILLed and the most advanced standby promoted: every call that had not been sent
 *    when the primary died waits in the buffer and succeeds on the new primary; only calls that
 *    were in flight at the kill may fail, and each such failure says the connection was lost
 *    or the outcome is unknown. Every acknowledged write is in the ledger exactly once, and
 *    nothing is there twice. (Commits are synchronous to at least one standby, so promoting the
 *    one that received the most WAL loses no acknowledged write.)
 * 2. A single primary with `failover.bufferMs`: writes issued while it is down are sent once it
 *    is back, in the order they were made; one that never comes back fails each call after
 *    `bufferMs` with FailoverTimeoutError, and the call's own timeout and end() still apply.
 *
 * The figures (errors against calls in flight at the kill, time until writes flow after the
 * promotion) are printed, not asserted: the machines are noisy.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  classify,
  FailoverTimeoutError,
  PoolClosedError,
  ResilientPool,
  TimeoutError,
} from '../../src/index.js';
import type { ClusterNode } from '../../src/testing/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { bounded, type Settled, settle } from '../support/guards.js';
import { until } from '../support/wait.js';

const handle = useCluster({
  replicas: 2,
  // Each commit waits for one of the two standbys: whichever has received the most WAL has them
  // all.
  postgresConf: { synchronous_standby_names: 'ANY 1 ("replica-1", "replica-2")' },
});
const pools: ResilientPool[] = [];

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end({ timeout: 5_000 })));
});

/** A call the test made, and what became of it. */
interface Op {
  op: string;
  kind: 'write' | 'transaction';
  worker: string;
  seq: number;
  startedAt: number;
  settledAt: number;
  outcome: Settled<unknown> | undefined;
}

/** The failure of a call that was on the wire when its server died: typed, never a refusal. */
function isOnTheWireFailure(err: unknown): boolean {
  const c = classify(err);
  return c === 'connection' || c === 'outcome-unknown';
}

/** The standby that has received the most WAL (as the drill picks it). */
async function mostAdvanced(replicas: readonly ClusterNode[]): Promise<number> {
  let best = -1;
  let bestLsn = -1n;
  for (const [i, replica] of replicas.entries()) {
    const client = new pg.Client({ connectionString: replica.url, connectionTimeoutMillis: 3_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ lsn: string | null }>(
        "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::text AS lsn",
      );
      const lsn = BigInt(rows[0]?.lsn?.split('.')[0] ?? '-1');
      if (lsn > bestLsn) {
        bestLsn = lsn;
        best = i;
      }
    } finally {
      await client.end().catch(() => {});
    }
  }
  if (best < 0) throw new Error('no standby answered');
  return best;
}

/** Runs `sql` on `node` over a connection of its own. */
async function onNode(node: ClusterNode, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: node.url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!handle.canControlProcesses)(`failover buffering (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('across a real promotion: only calls on the wire at the kill fail; every acknowledged write is there once', async () => {
    const cluster = handle.cluster;
    // Once promoted, a standby must not wait for a synchronous standby of its own.
    for (const replica of cluster.replicas) {
      await onNode(replica, "ALTER SYSTEM SET synchronous_standby_names = ''");
      await onNode(replica, 'SELECT pg_reload_conf()');
    }
    const settings = { max: 4, connectionTimeoutMillis: 1_000 };
    const db = new ResilientPool({
      primary: cluster.nodes.map((n) => ({ pool: n.createPool(settings), name: `node:${n.name}` })),
      replicas: cluster.replicas.map((r) => ({ pool: r.createPool(settings), name: r.name })),
      breaker: { consecutiveFailures: 2, resetTimeout: 500 },
      retry: { retries: 1, minTimeout: 10, maxTimeout: 50 },
      health: { intervalMs: 200, timeoutMs: 500 },
      // Generous: how long the promotion takes is the machine's business. The default is 10 s.
      failover: { bufferMs: 30_000 },
      logger: false,
    });
    pools.push(db);
    const failovers: Array<{ from: string; to: string; at: number }> = [];
    db.on('failover', (e) => failovers.push({ ...e, at: performance.now() }));
    await db.write(
      'CREATE TABLE buffering_ledger (op text NOT NULL, worker text NOT NULL, seq int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())',
    );

    const ops: Op[] = [];
    let stop = false;
    const run = async (kind: Op['kind'], worker: string) => {
      for (let seq = 0; !stop; seq++) {
        const op: Op = {
          op: `${worker}:${seq}`,
          kind,
          worker,
          seq,
          startedAt: performance.now(),
          settledAt: Number.NaN,
          outcome: undefined,
        };
        ops.push(op);
        const call: Promise<unknown> =
          kind === 'write'
            ? db.write('INSERT INTO buffering_ledger (op, worker, seq) VALUES ($1, $2, $3)', [
                op.op,
                worker,
                seq,
              ])
            : db.transaction(async (tx) => {
                await tx.query(
                  'INSERT INTO buffering_ledger (op, worker, seq) VALUES ($1, $2, $3)',
                  [`${op.op}:a`, worker, seq],
                );
                await tx.query(
                  'INSERT INTO buffering_ledger (op, worker, seq) VALUES ($1, $2, $3)',
                  [`${op.op}:b`, worker, seq],
                );
              });
        op.outcome = await settle(bounded(call, 60_000, `${kind} ${op.op}`));
        op.settledAt = performance.now();
        // A caller that fails does not spin.
        if (!op.outcome.ok) await sleep(20);
      }
    };
    const workers = [
      ...['w1', 'w2', 'w3', 'w4'].map((w) => run('write', w)),
      ...['t1', 't2'].map((w) => run('transaction', w)),
    ];
    const acked = () => ops.filter((o) => o.outcome?.ok === true).length;
    await until('the stream to run', () => acked() >= 60);

    // The signal goes out somewhere between these two moments: a call made in between may still
    // have been on the wire when it hit. One made after `killedAt` was not.
    const killAt = performance.now();
    await cluster.primary.kill();
    const killedAt = performance.now();
    // The failover manager takes its time; meanwhile a burst of writes arrives at once, far more
    // than the primary's connections and queue.
    await sleep(500);
    const burst = Array.from({ length: 40 }, (_, seq) => {
      const op: Op = {
        op: `burst:${seq}`,
        kind: 'write',
        worker: 'burst',
        seq,
        startedAt: performance.now(),
        settledAt: Number.NaN,
        outcome: undefined,
      };
      ops.push(op);
      return settle(
        db.write('INSERT INTO buffering_ledger (op, worker, seq) VALUES ($1, $2, $3)', [
          op.op,
          'burst',
          seq,
        ]),
      ).then((outcome) => {
        op.outcome = outcome;
        op.settledAt = performance.now();
      });
    });
    await sleep(1_000);
    const index = await mostAdvanced(cluster.replicas);
    const promoted = await cluster.promote(index);
    const promotedAt = performance.now();
    const ackedAtPromotion = acked();
    await until('writes to flow on the new primary', () => acked() >= ackedAtPromotion + 150, {
      timeoutMs: 40_000,
    });
    stop = true;
    await Promise.all([...workers, ...burst]);

    const statsAfter = db.stats().failover;
    const inFlightAtKill = ops.filter((o) => o.startedAt < killedAt && o.settledAt >= killAt);
    const failed = ops.filter((o) => o.outcome?.ok === false);
    const failedAfterKill = failed.filter((o) => o.startedAt >= killedAt);
    // Of the calls made after the kill, the first to be acknowledged (by the new primary).
    const firstAckAfterKill = Math.min(
      ...ops.filter((o) => o.outcome?.ok && o.startedAt >= killedAt).map((o) => o.settledAt),
    );
    const lastBurstAck = Math.max(
      ...ops.filter((o) => o.worker === 'burst').map((o) => o.settledAt),
    );
    console.log(
      [
        'failover buffering across a promotion:',
        `  ${ops.length} calls (${acked()} acknowledged), ${inFlightAtKill.length} in flight at the kill, ${failed.length} failed (${failedAfterKill.length} of them made after the kill)`,
        `  failed: ${failed.map((o) => `${o.op} ${(o.outcome as { error: Error }).error?.name}: ${(o.outcome as { error: Error }).error?.message}`).join('; ') || 'none'}`,
        `  kill to promote() resolved: ${Math.round(promotedAt - killAt)} ms (1.5 s of it waiting on purpose); relative to promote() resolving (it re-points the other standby after pg_promote()): 'failover' event ${failovers[0] ? Math.round(failovers[0].at - promotedAt) : '?'} ms, first call made after the kill acknowledged ${Math.round(firstAckAfterKill - promotedAt)} ms, the 40 buffered burst writes all acknowledged ${Math.round(lastBurstAck - promotedAt)} ms`,
        `  stats().failover: ${JSON.stringify(statsAfter)}`,
      ].join('\n'),
    );

    expect(failovers.map((f) => f.to)).toEqual([`node:${promoted.name}`]);
    // Nothing made after the primary died surfaced an error: it waited and went to the new one.
    expect(
      failedAfterKill.map((o) => `${o.op}: ${String((o.outcome as { error: unknown }).error)}`),
    ).toEqual([]);
    // Only calls in flight at the kill failed, each with a typed connection or outcome error.
    for (const o of failed) {
      expect(inFlightAtKill).toContain(o);
      const error = (o.outcome as { error: unknown }).error;
      expect(isOnTheWireFailure(error), String(error)).toBe(true);
    }
    expect(failed.length).toBeLessThanOrEqual(inFlightAtKill.length);
    // Calls did wait in the buffer, and none was refused or timed out there.
    expect(statsAfter?.bufferedTotal).toBeGreaterThanOrEqual(burst.length);
    expect(statsAfter).toMatchObject({ buffered: 0, expired: 0, refusedFull: 0, drained: 0 });

    // The ledger, read on the new primary: every acknowledged write once, nothing twice, and
    // each caller's writes in the order it made them.
    const { rows } = await db.write<{ op: string; n: number }>(
      'SELECT op, count(*)::int AS n FROM buffering_ledger GROUP BY op',
    );
    const counts = new Map(rows.map((r) => [r.op, r.n]));
    expect(rows.filter((r) => r.n > 1)).toEqual([]);
    const rowsOf = (o: Op) => (o.kind === 'write' ? [o.op] : [`${o.op}:a`, `${o.op}:b`]);
    const missing = ops
      .filter((o) => o.outcome?.ok)
      .flatMap(rowsOf)
      .filter((row) => counts.get(row) !== 1);
    expect(missing).toEqual([]);
    // A transaction in flight at the kill either committed whole or not at all.
    for (const o of failed.filter((f) => f.kind === 'transaction')) {
      expect([0, 2]).toContain(rowsOf(o).filter((row) => counts.has(row)).length);
    }
    const ordered = await db.write<{ worker: string; seqs: number[] }>(
      'SELECT worker, array_agg(seq ORDER BY at) AS seqs FROM buffering_ledger GROUP BY worker',
    );
    // (The burst was made all at once, so its writes have no order to keep.)
    for (const { worker, seqs } of ordered.rows.filter((r) => r.worker !== 'burst')) {
      expect(seqs, worker).toEqual([...seqs].sort((x, y) => x - y));
    }
  }, 120_000);

  it('a single primary: writes made while it is down go once it is back, in order; one that never comes back fails after bufferMs', async () => {
    const cluster = handle.cluster;
    const node = cluster.primary;
    const single = (bufferMs: number) => {
      const db = new ResilientPool({
        // One connection: the order writes are let out is the order they run.
        primary: node.createPool({ max: 1, connectionTimeoutMillis: 1_000 }),
        breaker: { consecutiveFailures: 1, resetTimeout: 300 },
        retry: { retries: 0 },
        health: { intervalMs: 200, timeoutMs: 500 },
        failover: { bufferMs },
        logger: false,
      });
      pools.push(db);
      return db;
    };

    // Comes back: a restart behind the same address.
    const db = single(30_000);
    await db.write('CREATE TABLE buffering_order (id bigserial PRIMARY KEY, n int NOT NULL)');
    await node.kill();
    const first = settle(db.write('INSERT INTO buffering_order (n) VALUES (0)'));
    await until('the first write to wait', () => (db.stats().failover?.buffered ?? 0) >= 1);
    // Made one after another without waiting, while the primary is down: all wait.
    const burst = Array.from({ length: 10 }, (_, i) =>
      settle(db.write('INSERT INTO buffering_order (n) VALUES ($1)', [i + 1])),
    );
    const downAt = performance.now();
    await node.start();
    const upAt = performance.now();
    const outcomes = await bounded(Promise.all([first, ...burst]), 40_000, 'the buffered writes');
    const doneAt = performance.now();
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    const { rows } = await db.write<{ n: number }>('SELECT n FROM buffering_order ORDER BY id');
    expect(rows.map((r) => r.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    console.log(
      `single primary restarted: down ${Math.round(upAt - downAt)} ms, the 11 buffered writes done ${Math.round(doneAt - upAt)} ms after it answered; stats().failover: ${JSON.stringify(db.stats().failover)}`,
    );

    // Never comes back.
    const lost = single(1_500);
    await lost.write('SELECT 1');
    await node.kill();
    const calls: Array<Promise<Settled<unknown>>> = [
      ...[1, 2, 3].map((i) =>
        settle(lost.write('INSERT INTO buffering_order (n) VALUES ($1)', [i])),
      ),
      settle(lost.transaction((tx) => tx.query('INSERT INTO buffering_order (n) VALUES (99)'))),
    ];
    const timedOut = settle(lost.write('SELECT 1', [], { timeout: 300 }));
    const failedAll = await bounded(Promise.all(calls), 20_000, 'the calls to a lost primary');
    for (const o of failedAll) {
      expect(o.ok).toBe(false);
      const error = (o as { error: unknown }).error;
      expect(error, String(error)).toBeInstanceOf(FailoverTimeoutError);
      expect(error).toMatchObject({ code: 'E_FAILOVER_TIMEOUT', bufferMs: 1_500, retryable: true });
      // Why it waited: the refused connect, the open circuit, or the endpoint declared down.
      expect(classify((error as Error).cause)).toMatch(/^(connection|unavailable)$/);
    }
    expect(((await timedOut) as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    const closing = settle(lost.write('SELECT 1'));
    await until('the last write to wait', () => (lost.stats().failover?.buffered ?? 0) >= 1);
    await lost.end({ timeout: 1_000 });
    expect(((await closing) as { error: unknown }).error).toBeInstanceOf(PoolClosedError);
    expect(lost.stats().failover).toMatchObject({
      buffered: 0,
      expired: 4,
      aborted: 1,
      drained: 1,
    });
  }, 120_000);
});
