/**
 * What must hold after any drill: every acknowledged write is in the table exactly once, no
 * write of unknown outcome is there twice, nothing else is there, no client leaked, and every
 * error callers saw was a known, typed failure.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { ResilientPool } from '../index.js';
import type { CallRecord } from './calls.js';
import type { FaultSummary, FaultWindow, InvariantResult } from './report-model.js';
import { LEDGER_TABLE, type Ledger } from './workload.js';

const sample = (ids: Iterable<string>) => [...ids].slice(0, 5).join(', ');

export async function checkLedger(
  connection: pg.PoolConfig,
  ledger: Ledger,
): Promise<InvariantResult> {
  const pool = new pg.Pool(connection);
  pool.on('error', () => {});
  try {
    const { rows } = await pool.query<{ op_id: string; n: number }>(
      `SELECT op_id, count(*)::int AS n FROM ${LEDGER_TABLE} GROUP BY op_id`,
    );
    const counts = new Map(rows.map((r) => [r.op_id, r.n]));
    const missing = [...ledger.acknowledged].filter((id) => !counts.has(id));
    const duplicated = rows.filter((r) => r.n > 1).map((r) => r.op_id);
    const unknown = rows
      .map((r) => r.op_id)
      .filter((id) => !ledger.acknowledged.has(id) && !ledger.uncertain.has(id));
    const appliedUncertain = [...ledger.uncertain].filter((id) => counts.has(id)).length;
    const ok = missing.length === 0 && duplicated.length === 0 && unknown.length === 0;
    const detail = ok
      ? `${ledger.acknowledged.size} acknowledged writes present exactly once; ` +
        `${appliedUncertain} of ${ledger.uncertain.size} failed writes were applied (each at most once)`
      : [
          missing.length
            ? `${missing.length} acknowledged writes missing (${sample(missing)})`
            : '',
          duplicated.length
            ? `${duplicated.length} writes applied twice (${sample(duplicated)})`
            : '',
          unknown.length ? `${unknown.length} rows nobody wrote (${sample(unknown)})` : '',
        ]
          .filter(Boolean)
          .join('; ');
    return { name: 'acknowledged writes present exactly once', ok, detail };
  } catch (err) {
    return {
      name: 'acknowledged writes present exactly once',
      ok: false,
      detail: `could not read the ledger: ${(err as Error).message}`,
    };
  } finally {
    await pool.end().catch(() => {});
  }
}

/**
 * No call holds a permit or a client once the workload stopped. Given a few seconds: clients
 * abandoned by a timed-out connect come back when their connect settles.
 */
export async function checkNoLeak(
  db: ResilientPool,
  pools: ReadonlyMap<string, pg.Pool>,
): Promise<InvariantResult> {
  const busy = () => {
    const problems: string[] = [];
    for (const e of db.stats().endpoints) {
      if (e.inFlight > 0 || e.queued > 0)
        problems.push(`${e.name}: ${e.inFlight} in flight, ${e.queued} queued`);
    }
    for (const [name, pool] of pools) {
      const checkedOut = pool.totalCount - pool.idleCount;
      if (checkedOut > 0) problems.push(`${name}: ${checkedOut} clients checked out`);
    }
    return problems;
  };
  const deadline = Date.now() + 10_000;
  let problems = busy();
  while (problems.length > 0 && Date.now() < deadline) {
    await delay(100);
    problems = busy();
  }
  return {
    name: 'no client leaked',
    ok: problems.length === 0,
    detail: problems.length === 0 ? 'every permit and client returned' : problems.join('; '),
  };
}

export function checkErrorsTyped(ledger: Ledger): InvariantResult {
  const unexpected = ledger.unexpected;
  return {
    name: 'every error surfaced was a known failure',
    ok: unexpected.length === 0,
    detail:
      unexpected.length === 0
        ? 'all errors were connection, timeout, resource, unavailable or outcome-unknown failures'
        : `${unexpected.length} unexpected errors, e.g. ${unexpected
            .slice(0, 3)
            .map((u) => `${u.kind}: ${u.message}`)
            .join(' | ')}`,
  };
}

/** Every read made `after` a write's consistency token saw the write. */
export function checkReadYourWrites(ledger: Ledger): InvariantResult {
  const misses = ledger.readYourWritesMisses;
  return {
    name: 'reads after a write token see the write',
    ok: misses.length === 0,
    detail:
      misses.length === 0
        ? `${ledger.readYourWritesChecked} reads after their write's token found it`
        : `${misses.length} of ${misses.length + ledger.readYourWritesChecked} reads after their write's token did not find it (${sample(misses)})`,
  };
}

/** A stretch after a fault shorter than this is not asked to show a read and a write. */
const MIN_USABLE_WINDOW_MS = 500;

/**
 * Each fault healed and left the cluster usable for the next: of the calls of the workload
 * started after its recovery (or, without one, in the last second before the next fault or the
 * end) and done before the next fault, none failed, and reads and writes succeeded. A pool that handed out dead clients after a restart, or a fault
 * that was never undone, fails it.
 */
export function checkUsableAfterFaults(
  faults: readonly FaultWindow[],
  summary: readonly FaultSummary[],
  calls: readonly CallRecord[],
  endedAt: number,
): InvariantResult {
  const problems: string[] = [];
  for (const [i, fault] of faults.entries()) {
    const until = faults[i + 1]?.start ?? endedAt;
    const recover = summary[i]?.timeToRecoverMs ?? null;
    const from =
      recover === null ? Math.max(fault.end, until - 1_000) : Math.min(until, fault.end + recover);
    // Calls still running when the next fault struck are that fault's, not this one's.
    const after = calls.filter((c) => c.kind !== 'overload' && c.start >= from && c.end <= until);
    const failed = after.filter((c) => !c.ok);
    if (failed.length > 0) {
      problems.push(`${fault.name}: ${failed.length} calls failed after it (${failed[0]!.error})`);
    } else if (until - from >= MIN_USABLE_WINDOW_MS) {
      for (const kind of ['read', 'write'] as const) {
        if (!after.some((c) => c.kind === kind && c.ok)) {
          problems.push(`${fault.name}: no ${kind} succeeded after it`);
        }
      }
    }
  }
  return {
    name: 'the pool works again after every fault',
    ok: problems.length === 0,
    detail:
      problems.length === 0
        ? `after each of ${faults.length} faults, reads and writes succeeded and none failed once it had recovered`
        : problems.join('; '),
  };
}
