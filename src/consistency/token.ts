/**
 * Consistency tokens: the primary's WAL position after a write. A replica that has replayed up
 * to a token shows everything written before it (replay is monotonic), so a read routed by the
 * token never sees data older than the write.
 */
import { parseLsn } from '../health/lsn.js';

/** An opaque token; today a PostgreSQL LSN such as '0/3000060'. Compare only with the library. */
export type ConsistencyToken = string & { readonly __consistencyToken: unique symbol };

const TOKENS = new WeakMap<object, ConsistencyToken>();

/** The token of a write's result, when one was captured (inside `db.session()`, or asked for). */
export function consistencyToken(result: object): ConsistencyToken | undefined {
  return TOKENS.get(result);
}

export function attachToken(result: object, token: ConsistencyToken): void {
  TOKENS.set(result, token);
}

/** The token's position, or undefined for anything that is not a token. */
export function tokenPosition(token: unknown): bigint | undefined {
  return typeof token === 'string' ? parseLsn(token) : undefined;
}

/** A token from an LSN as PostgreSQL prints it; undefined when it is not one. */
export function asToken(lsn: unknown): ConsistencyToken | undefined {
  return typeof lsn === 'string' && parseLsn(lsn) !== undefined
    ? (lsn as ConsistencyToken)
    : undefined;
}

/** The later of two tokens. */
export function laterToken(
  a: ConsistencyToken | undefined,
  b: ConsistencyToken | undefined,
): ConsistencyToken | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return (tokenPosition(a) ?? 0n) >= (tokenPosition(b) ?? 0n) ? a : b;
}

/** Captures the primary's position on the client that just wrote (one cheap query). */
export const CAPTURE_SQL = 'SELECT pg_current_wal_lsn()::text AS lsn';
