/**
 * BEGIN ... COMMIT around user code on one pinned client. A client is never handed back to the
 * pool inside a failed transaction: it is rolled back, or destroyed if rollback fails.
 */
import { classify } from './classify.js';
import { endpointOf } from './endpoint/endpoint.js';
import { TransactionOutcomeUnknownError } from './errors.js';
import type { PgClientLike } from './pg-like.js';

export interface TransactionOptions {
  /**
   * Isolation level of the transaction.
   * @default the server's default_transaction_isolation (normally 'read committed')
   */
  isolation?: 'read committed' | 'repeatable read' | 'serializable';
  /**
   * Start the transaction READ ONLY.
   * @default false
   */
  readOnly?: boolean;
  /**
   * DEFERRABLE (only meaningful with serializable + readOnly).
   * @default false
   */
  deferrable?: boolean;
  /**
   * 'read' runs a read-only transaction on a replica; 'write' on the primary.
   * @default 'write'
   */
  role?: 'read' | 'write';
  /** Aborts the wait for a connection. */
  signal?: AbortSignal;
}

interface Connectable {
  connect(options: { role: 'read' | 'write'; signal?: AbortSignal }): Promise<PgClientLike>;
}

const ISOLATION = new Set(['read committed', 'repeatable read', 'serializable']);

/** Builds the BEGIN statement; values are checked against a fixed set, never interpolated raw. */
export function beginStatement(options: TransactionOptions): string {
  const parts = ['BEGIN'];
  if (options.isolation !== undefined) {
    if (!ISOLATION.has(options.isolation)) {
      throw new TypeError(`Unknown isolation level '${String(options.isolation)}'`);
    }
    parts.push(`ISOLATION LEVEL ${options.isolation.toUpperCase()}`);
  }
  if (options.readOnly === true || options.role === 'read') parts.push('READ ONLY');
  if (options.deferrable === true) parts.push('DEFERRABLE');
  return parts.join(' ');
}

export async function runTransaction<T>(
  pool: Connectable,
  fn: (tx: PgClientLike) => Promise<T>,
  options: TransactionOptions,
): Promise<T> {
  const begin = beginStatement(options);
  const client = await pool.connect({
    role: options.role === 'read' ? 'read' : 'write',
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let result: T;
  try {
    await client.query(begin);
    result = await fn(client);
  } catch (err) {
    await rollbackAndRelease(client);
    throw err;
  }
  try {
    await client.query('COMMIT');
  } catch (err) {
    client.release(err as Error);
    // The COMMIT may or may not have been applied if the connection went away while it was in
    // flight; saying so is the only honest answer (the caller must check).
    // A client-side query_timeout is as uncertain as a lost connection: the server may have
    // committed and not answered yet. A server-side cancel (57014) means it did not commit.
    const errorClass = classify(err);
    const serverCancelled = (err as { code?: unknown }).code === '57014';
    if (
      errorClass === 'connection' ||
      errorClass === 'outcome-unknown' ||
      (errorClass === 'timeout' && !serverCancelled)
    ) {
      throw new TransactionOutcomeUnknownError(endpointOf(client), err);
    }
    throw err;
  }
  client.release();
  return result;
}

async function rollbackAndRelease(client: PgClientLike): Promise<void> {
  try {
    await client.query('ROLLBACK');
    client.release();
  } catch (rollbackError) {
    client.release(rollbackError as Error);
  }
}
