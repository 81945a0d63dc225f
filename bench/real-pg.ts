/**
 * Cases 1 and 4, against a real PostgreSQL server.
 *
 * Case 1 wraps the very pool it compares against (`ownsPools: false`): raw `pool.query` and
 * `ResilientPool.query` share the same connections and settings (max = concurrency).
 *
 * Case 4 sends `db.read()` to two replica pools on the same server, max 16 each, so the wrapped
 * side has the same 32 connections as the raw pool it is compared with.
 */

import type { BenchPlan } from './config.js';
import { type PairedResult, pairedRounds } from './paired.js';
import type { BenchServer } from './server.js';
import { ResilientPool } from './subject.js';
import type { Variant } from './variants.js';

const SQL = 'SELECT 1';

export interface PgCaseResult extends PairedResult {
  /** Connections open after the run, per side, to show the warm-up opened them all. */
  connections: string;
  note?: string;
}

/** With `variant`, the wrapped side has that feature on (case 1b: metrics, tracing). */
export async function queryVsRaw(
  server: BenchServer,
  concurrency: number,
  plan: BenchPlan,
  variant?: Variant,
): Promise<PgCaseResult> {
  const pool = server.createPool({ max: concurrency });
  const setup = variant?.setup();
  const db = new ResilientPool({
    primary: pool,
    logger: false,
    ownsPools: false,
    ...setup?.options,
  });
  try {
    const result = await pairedRounds(
      variant === undefined ? 'query' : `query, ${variant.label}`,
      concurrency,
      () => pool.query(SQL),
      () => db.query(SQL),
      plan,
    );
    return { ...result, connections: `${pool.totalCount} of max ${concurrency}` };
  } finally {
    await db.end();
    await pool.end();
    await setup?.shutdown();
  }
}

export async function readVsRaw(
  server: BenchServer,
  concurrency: number,
  plan: BenchPlan,
): Promise<PgCaseResult> {
  const perReplica = Math.max(1, Math.floor(concurrency / 2));
  const raw = server.createPool({ max: concurrency });
  const db = new ResilientPool({
    primary: server.createPool({ max: 1 }),
    replicas: [server.createPool({ max: perReplica }), server.createPool({ max: perReplica })],
    logger: false,
  });
  try {
    const result = await pairedRounds(
      'read (2 replicas)',
      concurrency,
      () => raw.query(SQL),
      () => db.read(SQL),
      plan,
    );
    const endpoints = db.stats().endpoints;
    const calls = endpoints.map((e) => `${e.name}=${e.calls}`).join(' ');
    const conns = endpoints.map((e) => `${e.name}=${e.total}`).join(' ');
    return {
      ...result,
      connections: `raw=${raw.totalCount} | ${conns}`,
      note: `wrapped calls per endpoint: ${calls}`,
    };
  } finally {
    await db.end();
    await raw.end();
  }
}
