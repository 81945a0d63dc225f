/**
 * One statement on one pooled client: acquire, send, settle, then release or destroy. Every
 * statement the library runs for a caller (query, read, write, cache fills, token capture) goes
 * through here, so each rule is written once:
 *
 * - pg's callback is taken once: pg calls back twice after an error raised while binding values
 *   (the error, then an empty result at the next ReadyForQuery); the second is ignored.
 * - A client is reused only after the server answered (a result, or its own ErrorResponse) and
 *   its ReadyForQuery was read. After any error raised in the client (a value pg cannot
 *   serialise, a malformed call, a lost connection, a read timeout) it is destroyed, so a result
 *   can never reach the wrong caller.
 * - A connection lost at any stage settles the call, once, and destroys the client.
 * - An abort (the call's timeout or signal) cancels a running statement on the server and
 *   destroys the connection; a late cancel can never hit the next caller.
 * - A named statement the server refused as stale (0A000 cached plan changed, 26000 no such
 *   statement) is forgotten by its connection before release, so that a re-send parses it again.
 * - The endpoint can end the attempt (`kill`): declared down, or `end()` out of time.
 * - A statement that failed on the wire says what the re-send rule and the breaker need to know:
 *   whether the endpoint was a hot standby when it was sent, whether it provably had no effect
 *   (the socket refused the write; the server ended the session before it could commit), and,
 *   for a lost connection, the stamp of that connection (one event, one failure signal).
 *
 * Hot path (idle client, no signal, success): pg's callback forms, no timer, no Error.
 */
import { classify, isHealthFailure, isServerError, isTerminatedSession } from '../classify.js';
import { asToken, attachToken, CAPTURE_SQL } from '../consistency/token.js';
import { abortError, OutcomeUnknownError } from '../errors.js';
import type { PgClientLike, QueryConfigLike, QueryResultLike } from '../pg-like.js';
import {
  markNotApplied,
  markNotSent,
  markRepreparable,
  markSentTo,
  wasWriteRefused,
} from '../retry/policy.js';
import type { AbortSignalLike } from './abort-signal-like.js';
import { type AcquireContext, type AcquiringLease, acquireClient, type Done } from './acquire.js';
import type { ActiveLeases } from './active-leases.js';
import { cancelBackend } from './cancel.js';
import { type EndpointBreaker, markConnectionLost, stampConnection } from './endpoint-breaker.js';
import { stampRelease } from './hygiene.js';
import { type ActiveLease, destroySocket, disown, wasClientDead } from './lease.js';
import { inTransaction } from './session-state.js';

export type QueryText = string | QueryConfigLike;

/** What to run. */
export interface Statement {
  text: QueryText;
  values: readonly unknown[] | undefined;
  /**
   * Follow a successful statement with `SELECT pg_current_wal_lsn()` on the same connection and
   * attach the position to the result as its consistency token. A failure there costs only the
   * token.
   */
  captureToken: boolean;
}

/** What a statement needs of its endpoint beyond acquiring. */
export interface StatementContext extends AcquireContext {
  readonly active: ActiveLeases;
  /** Advanced by the pool's slow-call sweep; stamped on each statement when sent. */
  readonly generation: number;
  /** Whether this endpoint is a hot standby: a statement that ran there wrote nothing. */
  readonly isHotStandby: boolean;
  /** Stamps the connections it first sees, and hears lost ones with their stamp. */
  readonly breaker: EndpointBreaker;
  /**
   * The server answered (a result, or a SQL error): the endpoint is healthy. `wasSlow`: the
   * statement was already counted as a slow call, so its answer is not counted again.
   */
  answered(sqlError: Error | null, wasSlow: boolean): void;
  /** Whether `err` shows the primary is read-only (demoted); counts it if so. */
  isDemotionSign(err: Error): boolean;
  /**
   * The attempt settled: `performance.now()` at admission, at the client's arrival (negative
   * when none came) and at the end, for the latency percentiles and the metrics.
   */
  statementSettled(startedAt: number, clientAt: number, endedAt: number, err: Error | null): void;
  /** Whether to time statements from sending to answer, for the adaptive limit. */
  readonly measuresRtt: boolean;
  /**
   * The server answered `rttMs` after the statement was sent (`nowMs` at the answer); `didDrop`:
   * a timeout or a server out of resources.
   */
  rttSample(rttMs: number, didDrop: boolean, nowMs: number): void;
}

/** How long an abandoned connection is kept for its cancel request to get through, at most. */
const CANCEL_GRACE_MS = 1_000;

const CONNECTING = 0;
/** The statement (or the token capture after it) is on the wire. */
const SENDING = 1;
const CAPTURING = 2;
/** Answered with a SQL error; waiting for the ReadyForQuery that follows. */
const SETTLING = 3;
/** Rolling back a transaction the statement left open, before release. */
const RETURNING = 4;
const DONE = 5;
type Phase =
  | typeof CONNECTING
  | typeof SENDING
  | typeof CAPTURING
  | typeof SETTLING
  | typeof RETURNING
  | typeof DONE;

export class StatementAttempt implements ActiveLease, AcquiringLease {
  sentAt = -1;
  slowCounted = false;
  listPrev: ActiveLease | undefined = undefined;
  listNext: ActiveLease | undefined = undefined;
  stopConnecting: (() => void) | undefined;
  private phase: Phase = CONNECTING;
  private client: PgClientLike | undefined;
  private onAbort: (() => void) | undefined;
  /** The outcome decided so far (a SQL error while settling, a result while capturing). */
  private error: Error | null = null;
  private result: QueryResultLike | undefined;
  /** `performance.now()` when the client arrived; -1 until then. */
  private clientAt = -1;
  /** Whether the endpoint was a hot standby when the statement was sent. */
  private sentToStandby = false;

  constructor(
    private readonly ctx: StatementContext,
    private readonly statement: Statement,
    private readonly signal: AbortSignalLike | undefined,
    /** `performance.now()` at admission (before any wait in the endpoint's queue). */
    private readonly startedAt: number,
    private readonly done: Done<QueryResultLike>,
  ) {}

  start(connectTimeout: number): void {
    this.ctx.active.add(this);
    acquireClient(this.ctx, connectTimeout, this.signal, this, this.onClient);
  }

  private readonly onClient = (err: Error | null, client?: PgClientLike): void => {
    if (this.phase !== CONNECTING) {
      // Ended while connecting (killed): the client arrived too late for this call.
      if (client !== undefined) this.discard(client, this.error ?? new Error('call ended'));
      return;
    }
    if (err !== null || client === undefined) {
      this.finish(err ?? new Error('no client'));
      return;
    }
    this.client = client;
    this.clientAt = performance.now();
    stampConnection(client, this.ctx.breaker);
    const signal = this.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        // Aborted while the client was being checked (a validation query): nothing was sent.
        this.returnClient(markNotSent(abortError(this.ctx.name, signal)));
        return;
      }
      this.onAbort = () => this.abandon();
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.send(client, this.statement.text, this.statement.values, SENDING);
  };

  private send(
    client: PgClientLike,
    text: QueryText,
    values: readonly unknown[] | undefined,
    phase: typeof SENDING | typeof CAPTURING,
  ): void {
    this.phase = phase;
    this.sentAt = this.ctx.generation;
    if (phase === SENDING) this.sentToStandby = this.ctx.isHotStandby;
    try {
      client.query(text, values, this.onResult);
    } catch (err) {
      // pg throws synchronously for a call it cannot even queue (query(undefined)): nothing sent.
      this.sentAt = -1;
      this.failClient(markNotSent(err as Error));
    }
  }

  private readonly onResult = (err: Error | null, result?: QueryResultLike): void => {
    const phase = this.phase;
    if (phase !== SENDING && phase !== CAPTURING) return; // pg's second callback, or killed
    this.sentAt = -1;
    const client = this.client as PgClientLike;
    if (phase === CAPTURING) {
      this.onCaptured(client, err, result);
      return;
    }
    if (this.ctx.measuresRtt) this.measure(err);
    if (err === null) {
      this.ctx.answered(null, this.slowCounted);
      this.result = result;
      if (this.statement.captureToken) this.send(client, CAPTURE_SQL, undefined, CAPTURING);
      else this.returnClient(null);
      return;
    }
    // A primary answering read-only was demoted: its connections are not worth keeping.
    if (!this.ctx.isDemotionSign(err) && isServerError(err)) {
      // A server out of connections, memory or disk (class 53) answers, but not in health: the
      // error counts against its circuit (endpoint.afterFailure), not also as an answer.
      if (!isHealthFailure(err)) this.ctx.answered(err, this.slowCounted);
      this.error = err;
      this.afterReadyForQuery(client);
      return;
    }
    if (wasClientDead(err)) markNotSent(err);
    this.failClient(this.lostOnTheWire(err));
  };

  /**
   * Notes on the failure of a statement that was sent (or being sent) what it proves: where it
   * was sent, and for a lost connection, its stamp and whether the statement certainly had no
   * effect. pg reports a write the socket refused with `syscall: 'write'`: the statement's last
   * message (its Query, or the Sync without which the extended protocol commits nothing) never
   * left. A 57P01 answer to a single-transaction statement means the server ended the session
   * before that transaction could commit (see `isTerminatedSession`).
   */
  private lostOnTheWire(err: Error): Error {
    markSentTo(err, this.sentToStandby);
    const client = this.client;
    if (client === undefined || classify(err) !== 'connection') return err;
    markConnectionLost(err, client);
    if (
      wasWriteRefused(err) ||
      (isTerminatedSession(err) && runsInOneTransaction(this.statement))
    ) {
      markNotApplied(err);
    }
    return err;
  }

  /**
   * The statement's time on the server, for the adaptive limit: from sending (the client arrived
   * just before, so its arrival time serves; our queue and the wrapped pool's are behind it) to
   * the answer. An error the server raised is an answer too; a timeout (statement_timeout, or
   * pg's query_timeout) or a server out of resources is a drop. A connection lost, or an error
   * raised in the client before anything was sent, says nothing about the server's latency.
   */
  private measure(err: Error | null): void {
    const now = performance.now();
    if (err === null) {
      this.ctx.rttSample(now - this.clientAt, false, now);
      return;
    }
    const errorClass = classify(err);
    if (errorClass === 'timeout' || errorClass === 'resource') {
      this.ctx.rttSample(now - this.clientAt, true, now);
    } else if (isServerError(err)) {
      this.ctx.rttSample(now - this.clientAt, false, now);
    }
  }

  private onCaptured(client: PgClientLike, err: Error | null, position?: QueryResultLike): void {
    if (err !== null) {
      // The write succeeded; only its token is lost. The connection's state is not worth a wait.
      this.discard(client, err);
      this.finish(null);
      return;
    }
    const token = asToken((position?.rows[0] as { lsn?: unknown } | undefined)?.lsn);
    if (token !== undefined && this.result !== undefined) attachToken(this.result, token);
    this.returnClient(null);
  }

  /**
   * pg answers a failed statement before the ReadyForQuery that follows it, and only then is the
   * transaction status current ('BEGIN; SELECT 1/0' leaves a failed transaction to roll back).
   */
  private afterReadyForQuery(client: PgClientLike): void {
    const c = client as {
      readyForQuery?: boolean;
      connection?: { once?(event: 'readyForQuery', listener: () => void): unknown };
    };
    if (c.readyForQuery !== false || typeof c.connection?.once !== 'function') {
      this.afterAnswer(client);
      return;
    }
    this.phase = SETTLING;
    c.connection.once('readyForQuery', () => {
      if (this.phase === SETTLING) this.afterAnswer(client);
    });
  }

  /**
   * After the server's refusal, at ReadyForQuery. A stale named statement (0A000, 26000) was
   * refused at Bind, before it ran, and pg would skip its Parse on this connection forever (it
   * remembers the name in `connection.parsedStatements`). So the connection forgets it, and the
   * error is marked for the re-send rule (retry/policy.ts), which allows one re-send that then
   * parses again: for 26000 the server has no such statement, so pg's entry is dropped; for
   * 0A000 the server still holds the stale one (a new Parse of the name would fail with 42P05),
   * so it is deallocated first. Where that cannot be done (not pg's client, a transaction left
   * open, DEALLOCATE failed), the connection is destroyed instead, which forgets everything.
   */
  private afterAnswer(client: PgClientLike): void {
    const err = this.error;
    const name = statementName(this.statement.text);
    if (err === null || name === undefined || classify(err) !== 'stale-statement') {
      this.returnClient(err);
      return;
    }
    const parsed = parsedStatements(client);
    if (
      (parsed !== undefined && parsed[name] === undefined) ||
      ((err as { code?: unknown }).code === '26000' && !err.message.includes(`"${name}"`))
    ) {
      // Not the statement pg had cached on this connection (a 26000 that names another one
      // comes from the statement's own SQL, such as `EXECUTE x`): nothing to repair here.
      this.returnClient(err);
      return;
    }
    markRepreparable(err);
    if (parsed === undefined || inTransaction(client)) {
      this.endWithKnownOutcome(err);
      return;
    }
    if ((err as { code?: unknown }).code === '26000') {
      delete parsed[name];
      this.returnClient(err);
      return;
    }
    this.phase = RETURNING;
    client.query(`DEALLOCATE ${quoteIdentifier(name)}`, undefined, (deallocateError) => {
      if (this.phase !== RETURNING) return;
      if (deallocateError) {
        this.endWithKnownOutcome(deallocateError);
        return;
      }
      delete parsed[name];
      this.returnClient(err);
    });
  }

  /**
   * Gives the client back to the pool, first rolling back a transaction left open on it (a
   * `query('BEGIN')` through the pool) so the next caller never inherits one.
   */
  private returnClient(outcome: Error | null): void {
    const client = this.client as PgClientLike;
    this.error = outcome;
    if (this.ctx.hygiene.stampReleases) stampRelease(client);
    if (!inTransaction(client)) {
      this.giveBack(undefined);
      this.finish(outcome);
      return;
    }
    this.ctx.logger.warn(
      { endpoint: this.ctx.name },
      'resilient-pool: a statement left a transaction open on a pooled connection; rolled back (use transaction() or connect() for multi-statement work)',
    );
    this.phase = RETURNING;
    client.query('ROLLBACK', undefined, (err) => {
      if (this.phase !== RETURNING) return;
      this.giveBack(err ?? undefined);
      this.finish(outcome);
    });
  }

  /** The connection failed while this attempt owned it. */
  connectionLost(err: Error): void {
    switch (this.phase) {
      case SENDING:
        this.sentAt = -1;
        this.failClient(this.lostOnTheWire(err));
        return;
      case CAPTURING:
      case SETTLING:
      case RETURNING:
        // The outcome is already known; only the client is lost.
        this.endWithKnownOutcome(err);
        return;
      default:
        // Connecting: the check's own callback reports it. Done: nothing to do.
        return;
    }
  }

  /** The endpoint ends this attempt (declared down, or `end()` out of time). */
  kill(reason: Error): void {
    switch (this.phase) {
      case CONNECTING:
        this.stopConnecting?.();
        this.error = markNotSent(reason);
        this.finish(this.error);
        return;
      case SENDING: {
        this.sentAt = -1;
        const client = this.client as PgClientLike;
        destroySocket(client);
        // On a hot standby the statement wrote nothing and may run elsewhere; anywhere else it
        // may have applied. What counts is what the endpoint was when the statement was sent.
        this.failClient(
          markSentTo(
            this.sentToStandby ? reason : new OutcomeUnknownError(this.ctx.name, reason),
            this.sentToStandby,
          ),
        );
        return;
      }
      case CAPTURING:
      case SETTLING:
      case RETURNING:
        destroySocket(this.client as PgClientLike);
        this.endWithKnownOutcome(reason);
        return;
      default:
        return;
    }
  }

  /** The call's signal fired: cancel a running statement on the server, end the call now. */
  private abandon(): void {
    const signal = this.signal as AbortSignalLike;
    const client = this.client as PgClientLike;
    if (this.phase === SENDING) {
      this.sentAt = -1;
      const err = abortError(this.ctx.name, signal);
      this.cancelThenDiscard(client, err);
      this.finish(err);
    } else if (this.phase === CAPTURING) {
      // The write is done; the position query is cancelled, the write's result still returned.
      this.cancelThenDiscard(client, abortError(this.ctx.name, signal));
      this.finish(this.error);
    } else if (this.phase === SETTLING || this.phase === RETURNING) {
      this.endWithKnownOutcome(abortError(this.ctx.name, signal));
    }
  }

  /** Destroys the client and settles with what was already decided (result or SQL error). */
  private endWithKnownOutcome(why: Error): void {
    const client = this.client;
    if (client !== undefined) this.discard(client, why);
    this.finish(this.error);
  }

  /** Destroys the client (its state is unknown after `err`) and fails the call with `err`. */
  private failClient(err: Error): void {
    const client = this.client;
    if (client !== undefined) this.discard(client, err);
    this.finish(err);
  }

  /**
   * Cancels the statement running on `client`, and destroys the connection once the cancel
   * request was delivered (or after CANCEL_GRACE_MS): PgBouncer forwards a CancelRequest only for
   * a client connection it still has, so destroying first would leave the statement running on
   * the server (and, in transaction pooling, its server connection busy). The client is already
   * out of this attempt's hands (disowned: its errors are swallowed) and never reused.
   */
  private cancelThenDiscard(client: PgClientLike, err: Error): void {
    if (client === this.client) this.client = undefined;
    disown(client);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CANCEL_GRACE_MS);
      timer.unref?.();
    });
    void Promise.race([cancelBackend(client), grace]).then(() => {
      clearTimeout(timer);
      client.release(err);
    });
  }

  private discard(client: PgClientLike, err: Error): void {
    if (client === this.client) this.client = undefined;
    disown(client);
    client.release(err);
  }

  private giveBack(err: Error | undefined): void {
    const client = this.client;
    if (client === undefined) return;
    this.client = undefined;
    disown(client);
    client.release(err);
  }

  private finish(err: Error | null): void {
    if (this.phase === DONE) return;
    this.phase = DONE;
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    this.ctx.active.delete(this);
    this.ctx.statementSettled(this.startedAt, this.clientAt, performance.now(), err);
    this.done(err, err === null ? this.result : undefined);
  }
}

/** Statements that run, whole, in the one transaction pg's call opens (no COMMIT of their own). */
const ONE_TRANSACTION = /^(?:select|insert|update|delete|merge|with|values|table)\b/i;
/** Leading whitespace and comments, before the first keyword. */
const LEADING_NOISE = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)+/;

/**
 * Whether the statement runs in a single transaction that ends with it, so that a session
 * ended before that transaction committed applied nothing of it. A query string of several
 * statements (simple protocol) may commit some before the end (`...; COMMIT; ...`), and a CALL
 * or DO block may commit inside: those never qualify, nor does anything whose text is unclear.
 */
function runsInOneTransaction(statement: Statement): boolean {
  const config = typeof statement.text === 'object' && statement.text !== null;
  const text = config ? (statement.text as QueryConfigLike).text : statement.text;
  if (typeof text !== 'string') return false;
  const body = text.replace(LEADING_NOISE, '');
  if (!ONE_TRANSACTION.test(body)) return false;
  const values =
    statement.values ?? (config ? (statement.text as QueryConfigLike).values : undefined);
  // With parameters, pg uses the extended protocol, whose Parse takes a single statement.
  if (Array.isArray(values) && values.length > 0) return true;
  // Simple protocol: only a string with no inner semicolon is surely one statement.
  return !body.trimEnd().replace(/;+$/, '').includes(';');
}

/** The name of a named (prepared) statement, or undefined. */
function statementName(text: QueryText): string | undefined {
  if (typeof text !== 'object' || text === null) return undefined;
  const name = (text as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** pg's per-connection record of the named statements it has parsed (name -> text). */
function parsedStatements(client: PgClientLike): Record<string, string> | undefined {
  const parsed = (client as { connection?: { parsedStatements?: unknown } }).connection
    ?.parsedStatements;
  return typeof parsed === 'object' && parsed !== null
    ? (parsed as Record<string, string>)
    : undefined;
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
