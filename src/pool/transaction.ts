/**
 * `transaction(fn)`: BEGIN ... COMMIT around user code on one pinned client, re-run from the start
 * when PostgreSQL says re-running is safe (serialization failure, deadlock, lock not available),
 * never re-run once COMMIT may have happened, and never left holding a client in a failed state.
 */
import { classify } from '../classify.js';
import { asToken, CAPTURE_SQL, type ConsistencyToken } from '../consistency/token.js';
import { startDeadline } from '../deadline.js';
import { cancelBackend } from '../endpoint/cancel.js';
import { endpointOf } from '../endpoint/held-client.js';
import { destroySocket, wasClientDead } from '../endpoint/lease.js';
import {
  AbortedError,
  abortError,
  ConfigError,
  TransactionOutcomeUnknownError,
  TransactionRolledBackError,
} from '../errors.js';
import { DEFAULTS } from '../options/defaults.js';
import type { RetryOptions } from '../options/policy-types.js';
import type { PgClientLike, QueryConfigLike, QueryResultLike } from '../pg-like.js';
import { backoffDelay } from '../retry/backoff.js';
import { retryAfterFailure } from '../retry/retry-loop.js';

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
  /**
   * Times `fn` is re-run after a serialization failure (40001), a deadlock (40P01) or a lock not
   * available (55P03), with backoff and full jitter (the pool's `retry` timings). The error that
   * ends the tries is the last one, with `attempts` set on it. With failover buffering on, a
   * transaction whose BEGIN lost its connection (none of `fn`'s statements sent) is re-run too,
   * at once: its checkout then waits for the new primary.
   * @default 3
   */
  retries?: number;
  /**
   * Receives the consistency token of the commit (the primary's WAL position after it), for a
   * later `read(..., { after: token })`. Inside `db.session()` the session gets it anyway.
   * Costs one cheap query after COMMIT.
   */
  onToken?: (token: ConsistencyToken) => void;
  /** Aborts the transaction: the running statement is cancelled and the work rolled back. */
  signal?: AbortSignal;
  /**
   * Bounds the whole transaction, tries included, in ms. When it elapses during the work, the
   * running statement is cancelled, the work rolled back, and the call rejects with TimeoutError;
   * during COMMIT, with TransactionOutcomeUnknownError.
   * @default undefined
   */
  timeout?: number;
}

/** What `fn` learns about the try it is in, so side effects outside the database can be guarded. */
export interface TransactionAttempt {
  /** 1 for the first try, 2 for the first re-run, ... */
  attempt: number;
}

type Row = Record<string, unknown>;
type Callback = (err: Error | null, result?: QueryResultLike) => void;

/** The handle `fn` receives: pg's `query()` call shapes, nested transactions, the raw client. */
export interface Transaction {
  query<R extends Row = Row>(
    text: string | QueryConfigLike,
    values?: readonly unknown[],
  ): Promise<QueryResultLike<R>>;
  query(text: string | QueryConfigLike, callback: Callback): void;
  query(
    text: string | QueryConfigLike,
    values: readonly unknown[] | undefined,
    callback: Callback,
  ): void;
  /**
   * A nested transaction: `fn` runs inside a SAVEPOINT; if it throws, the work since the
   * savepoint is rolled back and the error rethrown, and the outer transaction goes on.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** The try this is (1 = first). */
  readonly attempt: number;
  /** The pinned pg client, for APIs that need one (cursors, COPY). */
  readonly client: PgClientLike;
}

interface Connectable {
  connect(options: { role: 'read' | 'write'; signal?: AbortSignal }): Promise<PgClientLike>;
}

export interface TransactionHooks {
  /** Timings of the backoff between tries. */
  backoff: Pick<Required<RetryOptions>, 'minTimeout' | 'maxTimeout' | 'factor'>;
  onRetry(attempt: number, delayMs: number, error: unknown): void;
  /** The pool's lifetime: a backoff between tries ends when `end()` is called. */
  lifetime: AbortSignal;
  /** Set when the commit's token is wanted (a session, or `onToken`). */
  onToken: ((token: ConsistencyToken) => void) | undefined;
  /**
   * Re-run a transaction whose BEGIN lost its connection (failover buffering is on: the re-run's
   * checkout waits for the new primary). Counts against `retries`, without a pause.
   */
  rerunLostBegin?: boolean;
}

const ISOLATION = new Set(['read committed', 'repeatable read', 'serializable']);

/** Builds the BEGIN statement; values are checked against a fixed set, never interpolated raw. */
export function beginStatement(options: TransactionOptions): string {
  const parts = ['BEGIN'];
  if (options.isolation !== undefined) {
    if (!ISOLATION.has(options.isolation)) {
      throw new ConfigError([
        `transaction(): unknown isolation level '${String(options.isolation)}'`,
      ]);
    }
    parts.push(`ISOLATION LEVEL ${options.isolation.toUpperCase()}`);
  }
  if (options.readOnly === true || options.role === 'read') parts.push('READ ONLY');
  if (options.deferrable === true) parts.push('DEFERRABLE');
  return parts.join(' ');
}

/**
 * Serialization failure and deadlock (40001, 40P01), after which PostgreSQL's manual (13.5) says
 * to re-run the whole transaction, and lock not available (55P03, a NOWAIT or lock_timeout
 * refusal), which this library re-runs the same way.
 */
function isConflict(err: unknown): boolean {
  return classify(err) === 'conflict';
}

/**
 * Failures of BEGIN on a lost connection, marked where BEGIN is sent. None of the caller's
 * statements had been sent, and the server rolls back a transaction whose connection closes, so
 * nothing of it was applied: the whole transaction may run again.
 */
const LOST_AT_BEGIN = new WeakSet<object>();

function markIfLostAtBegin(err: unknown): void {
  if (typeof err !== 'object' || err === null) return;
  if (classify(err) === 'connection' || (err instanceof Error && wasClientDead(err))) {
    LOST_AT_BEGIN.add(err);
  }
}

/** Whether the try failed so that the transaction may run again (see TransactionOptions). */
function mayRerun(err: unknown, hooks: TransactionHooks): boolean {
  if (isConflict(err)) return true;
  return (
    hooks.rerunLostBegin === true &&
    typeof err === 'object' &&
    err !== null &&
    LOST_AT_BEGIN.has(err)
  );
}

function withAttempts(err: unknown, attempts: number): unknown {
  if (typeof err === 'object' && err !== null && Object.isExtensible(err)) {
    (err as { attempts?: number }).attempts = attempts;
  }
  return err;
}

class TransactionHandle implements Transaction {
  /** The first error a statement raised, to explain a COMMIT that rolled back. */
  firstError: unknown;
  private savepoints = 0;

  constructor(
    readonly client: PgClientLike,
    readonly attempt: number,
    /** Set when the caller was already answered (timeout, abort): no more statements. */
    private readonly abandoned: () => Error | undefined,
  ) {}

  private noteError(err: unknown): void {
    this.firstError ??= err;
  }

  query<R extends Row = Row>(
    text: string | QueryConfigLike,
    values?: readonly unknown[],
  ): Promise<QueryResultLike<R>>;
  query(text: string | QueryConfigLike, callback: Callback): void;
  query(
    text: string | QueryConfigLike,
    values: readonly unknown[] | undefined,
    callback: Callback,
  ): void;
  query(
    text: string | QueryConfigLike,
    valuesOrCallback?: readonly unknown[] | Callback,
    callback?: Callback,
  ): Promise<QueryResultLike> | undefined {
    const values = typeof valuesOrCallback === 'function' ? undefined : valuesOrCallback;
    const cb = typeof valuesOrCallback === 'function' ? valuesOrCallback : callback;
    const abandoned = this.abandoned();
    if (abandoned !== undefined) {
      if (cb === undefined) return Promise.reject(abandoned);
      queueMicrotask(() => cb(abandoned));
      return undefined;
    }
    if (cb !== undefined) {
      this.client.query(text, values, (err, result) => {
        if (err) this.noteError(err);
        cb(err, result);
      });
      return undefined;
    }
    return (this.client.query(text, values) as Promise<QueryResultLike>).catch((err: unknown) => {
      this.noteError(err);
      throw err;
    });
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const name = `resilient_pool_sp_${++this.savepoints}`;
    await this.query(`SAVEPOINT ${name}`);
    let result: T;
    try {
      result = await fn(this);
    } catch (err) {
      // Back to the savepoint: the outer transaction stays usable. If even that fails (the
      // connection is gone), the original error is the one worth reporting.
      await this.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => {});
      throw err;
    }
    await this.query(`RELEASE SAVEPOINT ${name}`);
    return result;
  }
}

/** Runs `fn` in a transaction, re-running it on conflicts; see TransactionOptions. */
export async function runTransaction<T>(
  pool: Connectable,
  fn: (tx: Transaction, info: TransactionAttempt) => Promise<T>,
  options: TransactionOptions,
  hooks: TransactionHooks,
): Promise<T> {
  const begin = beginStatement(options);
  const retries = options.retries ?? DEFAULTS.call.transaction.retries;
  const deadline = startDeadline(options.timeout, options.signal);
  const signal = deadline?.signal ?? options.signal;
  let attempts = 1;
  try {
    try {
      return await attemptTransaction(pool, fn, options, begin, 1, signal, hooks);
    } catch (first) {
      if (!mayRerun(first, hooks) || retries === 0) throw withAttempts(first, 1);
      // Entered only after a conflict (or a BEGIN that lost its connection): the common case
      // never pays for the retry loop.
      return await retryAfterFailure({
        first,
        retries,
        signal,
        lifetime: hooks.lifetime,
        attempt: (attempt) => {
          attempts = attempt;
          return attemptTransaction(pool, fn, options, begin, attempt, signal, hooks);
        },
        decide: (error, attemptNumber) => {
          if (!mayRerun(error, hooks)) return false;
          // A lost BEGIN needs no pause: the checkout of the next try waits for a primary.
          const delayMs = isConflict(error) ? backoffDelay(attemptNumber, hooks.backoff) : 0;
          hooks.onRetry(attemptNumber + 1, delayMs, error);
          return delayMs;
        },
      }).catch((err: unknown) => {
        throw withAttempts(err, attempts);
      });
    }
  } finally {
    deadline?.done();
  }
}

/**
 * One try. With a signal, the caller is answered as soon as it fires (the running statement is
 * cancelled, the work rolled back in the background); a COMMIT already sent makes the answer
 * TransactionOutcomeUnknownError, because the commit may still land.
 */
function attemptTransaction<T>(
  pool: Connectable,
  fn: (tx: Transaction, info: TransactionAttempt) => Promise<T>,
  options: TransactionOptions,
  begin: string,
  attempt: number,
  signal: AbortSignal | undefined,
  hooks: TransactionHooks,
): Promise<T> {
  if (signal === undefined)
    return runAttempt(pool, fn, options, begin, attempt, undefined, undefined, hooks);
  if (signal.aborted) return Promise.reject(abortError(undefined, signal));
  const state: AttemptState = {
    aborted: false,
    committing: false,
    committed: false,
    result: undefined,
    client: undefined,
  };
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      const client = state.client;
      if (state.committed) {
        // COMMIT was answered: the outcome is known. Only the token's query may still run; its
        // connection is destroyed (never reused after a cancel) and the result returned now.
        state.aborted = true;
        if (client !== undefined) destroySocket(client);
        resolve(state.result as T);
        return;
      }
      state.aborted = true;
      if (state.committing && client !== undefined) {
        reject(new TransactionOutcomeUnknownError(endpointOf(client), signal.reason));
        return;
      }
      if (client !== undefined) void cancelBackend(client);
      reject(abortError(client && endpointOf(client), signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    runAttempt(pool, fn, options, begin, attempt, state, signal, hooks).then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

interface AttemptState {
  aborted: boolean;
  committing: boolean;
  /** COMMIT was answered with COMMIT: the outcome is known, and `result` is the answer. */
  committed: boolean;
  result: unknown;
  client: PgClientLike | undefined;
}

async function runAttempt<T>(
  pool: Connectable,
  fn: (tx: Transaction, info: TransactionAttempt) => Promise<T>,
  options: TransactionOptions,
  begin: string,
  attempt: number,
  state: AttemptState | undefined,
  signal: AbortSignal | undefined,
  hooks: TransactionHooks,
): Promise<T> {
  const client = await pool.connect({
    role: options.role === 'read' ? 'read' : 'write',
    ...(signal ? { signal } : {}),
  });
  if (state !== undefined) {
    state.client = client;
    if (state.aborted) {
      client.release();
      throw abandonedBy(client, signal);
    }
  }
  const tx = new TransactionHandle(client, attempt, () =>
    state?.aborted ? abandonedBy(client, signal) : undefined,
  );
  let result: T;
  try {
    try {
      await client.query(begin);
    } catch (err) {
      markIfLostAtBegin(err);
      throw err;
    }
    result = await fn(tx, { attempt });
    // The caller was already told the transaction failed: it must not commit now.
    if (state?.aborted) throw abandonedBy(client, signal);
  } catch (err) {
    await rollbackAndRelease(client, () => state?.aborted === true);
    throw err;
  }
  let commit: QueryResultLike;
  try {
    if (state !== undefined) state.committing = true;
    commit = (await client.query('COMMIT')) as QueryResultLike;
  } catch (err) {
    client.release(err as Error);
    throw commitError(client, err);
  }
  if (state !== undefined && commit.command !== 'ROLLBACK') {
    state.result = result;
    state.committed = true;
  }
  let captureFailed: Error | undefined;
  const abandoned = () => state?.aborted === true;
  if (commit.command !== 'ROLLBACK' && hooks.onToken !== undefined && !abandoned()) {
    // Committed: a failure to read the position costs only the token, never the outcome.
    try {
      const position = (await client.query(CAPTURE_SQL)) as QueryResultLike;
      const token = asToken((position.rows[0] as { lsn?: unknown } | undefined)?.lsn);
      if (token !== undefined) hooks.onToken(token);
    } catch (err) {
      // No token; and the connection is not reused (it may have been cut, or a cancel sent).
      captureFailed = err as Error;
    }
    // Abandoned while reading the token: the caller was answered, the token is dropped.
    if (abandoned()) {
      client.release(captureFailed ?? new Error('transaction answered; token query abandoned'));
      return result;
    }
  }
  client.release(captureFailed);
  if (commit.command === 'ROLLBACK') {
    // fn caught a statement's error and went on: PostgreSQL answers COMMIT of a failed
    // transaction with ROLLBACK, not an error. Report the error that doomed it (a conflict is
    // then re-run like any other). The first error is the cause; later ones (25P02) follow it.
    throw tx.firstError ?? new TransactionRolledBackError(endpointOf(client));
  }
  return result;
}

/**
 * What the work of a transaction its caller abandoned (timeout, abort) gets from then on: the
 * caller's own abort error, so statements fn still sends fail the same typed way.
 */
function abandonedBy(client: PgClientLike, signal: AbortSignal | undefined): Error {
  return signal === undefined
    ? new AbortedError(endpointOf(client), undefined)
    : abortError(endpointOf(client), signal);
}

/** Why a COMMIT failed, and whether its outcome is known. */
function commitError(client: PgClientLike, err: unknown): unknown {
  // A lost connection or a client-side query_timeout leaves the commit's fate unknown: the
  // server may have committed without answering. A server-side cancel (57014) or a conflict
  // means it did not commit.
  // A client that already knew its connection was gone never wrote the COMMIT: the server rolls
  // back a transaction whose connection closes, so it certainly did not commit.
  if (err instanceof Error && wasClientDead(err)) return err;
  const errorClass = classify(err);
  const serverCancelled = (err as { code?: unknown }).code === '57014';
  if (
    errorClass === 'connection' ||
    errorClass === 'outcome-unknown' ||
    (errorClass === 'timeout' && !serverCancelled)
  ) {
    return new TransactionOutcomeUnknownError(endpointOf(client), err);
  }
  return err;
}

/** Rolls back and returns the client, or destroys it if rollback fails (or was abandoned). */
async function rollbackAndRelease(client: PgClientLike, abandoned: () => boolean): Promise<void> {
  // Once the caller abandoned the transaction a cancel request may be in flight for this
  // connection, so it is never handed to anyone again; asked after the ROLLBACK too, since the
  // abandonment (and its cancel) can come while the ROLLBACK runs.
  const discarded = new Error('transaction abandoned; connection discarded');
  if (abandoned()) {
    client.release(discarded);
    return;
  }
  try {
    await client.query('ROLLBACK');
    client.release(abandoned() ? discarded : undefined);
  } catch (rollbackError) {
    client.release(rollbackError as Error);
  }
}
