/**
 * The first stage of every call: take a client from the wrapped pool within the acquire timeout
 * and the call's signal, give it an owner (see lease.ts), and ready it (transaction-status
 * tracking, the optional idle and writable checks). Nothing of the caller's has been sent yet, so
 * every error here is marked not-sent.
 */
import { classify } from '../classify.js';
import { AcquireTimeoutError, abortError } from '../errors.js';
import type { PgClientLike, PgPoolLike } from '../pg-like.js';
import { describeError } from '../telemetry/describe-error.js';
import type { EndpointRole } from '../telemetry/events.js';
import type { LoggerLike } from '../telemetry/logger.js';
import { type ConnectPacer, MUST_WAIT, type PacerWait } from './connect-pacer.js';
import { type ConnectionHygiene, isReadOnlyPrimaryError, runCheck } from './hygiene.js';
import { adopt, disown, type Lease } from './lease.js';

/** A lease being acquired; `stopConnecting` is set while a bounded wait for a client runs. */
export interface AcquiringLease extends Lease {
  /** Ends the wait now (its timer and listener); a client that arrives later goes back. */
  stopConnecting: (() => void) | undefined;
}

import { markNotSent } from '../retry/policy.js';
import type { AbortSignalLike } from './abort-signal-like.js';
import { trackTransactionStatus } from './session-state.js';

export type Done<T> = (err: Error | null, value?: T) => void;

/** What acquiring needs of its endpoint. */
export interface AcquireContext {
  readonly name: string;
  readonly role: EndpointRole;
  readonly pool: PgPoolLike;
  readonly hygiene: ConnectionHygiene;
  readonly logger: LoggerLike;
  readonly acquireTimeout: number;
  /** Replacement connects after failed checks stop after this many. */
  readonly maxConcurrent: number;
  /** A new primary connection was found read-only. */
  suspectDemotion(err: Error): void;
  /** Set while metrics are on: only then is a new connection's opening timed. */
  readonly timings: object | undefined;
  /** A connection this checkout asked the wrapped pool to open was opened in `ms`. */
  connectionCreated(ms: number): void;
  /** Paces the connections the endpoint opens after an outage (connect-pacer.ts). */
  readonly pacer: ConnectPacer;
}

/** pg's own default pool size, for pools that do not expose `options.max`. */
const PG_DEFAULT_MAX = 10;

/**
 * Connect errors that came from waiting for a client another caller holds (the pool was full when
 * asked), not from the server: local saturation, which must never count against a circuit.
 */
const WAITED_ON_OTHERS = new WeakSet<object>();

export function waitedOnOthers(err: unknown): boolean {
  return typeof err === 'object' && err !== null && WAITED_ON_OTHERS.has(err);
}

/**
 * Whether `pool.connect()` will open a new connection for this caller: pg-pool does so exactly
 * when it has no idle client and is not full, and hands the new client to the caller that asked.
 */
function opensConnection(pool: PgPoolLike): boolean {
  return pool.idleCount === 0 && pool.totalCount < (pool.options?.max ?? PG_DEFAULT_MAX);
}

/** Whether `pool.connect()` would have to wait for a client someone else holds. */
function isSaturated(pool: PgPoolLike): boolean {
  if (pool.waitingCount > 0) return true;
  const max = pool.options?.max ?? PG_DEFAULT_MAX;
  return pool.idleCount === 0 && pool.totalCount >= max;
}

/**
 * Takes a client for `lease`. When an idle client exists, pg hands it over on the next tick, so
 * no timer is armed and no abort listener added: the common case stays timer-free, with a signal
 * too (a hedged read always has one). A signal that fires during that tick is seen by the lease
 * when the client arrives (both leases check `signal.aborted` before sending anything), so the
 * caller waits at most a tick longer. Otherwise the wait is bounded by `timeoutMs` and `signal`;
 * a client that arrives after the caller gave up goes back.
 */
export function acquireClient(
  ctx: AcquireContext,
  timeoutMs: number,
  signal: AbortSignalLike | undefined,
  lease: AcquiringLease,
  done: Done<PgClientLike>,
  attempt = 0,
  deadlineAt?: number,
): void {
  const { pool } = ctx;
  // pg-pool hands an idle client over on the next tick, and counts a claim made in the same tick
  // as waiting: only a client nobody has claimed yet makes the wait certainly short.
  if (
    pool.idleCount > pool.waitingCount &&
    deadlineAt === undefined &&
    (signal === undefined || !signal.aborted)
  ) {
    pool.connect((err, client) =>
      err || client === undefined
        ? done(markNotSent(err ?? new Error('pool.connect() returned no client')))
        : prepare(ctx, client, lease, attempt, timeoutMs, signal, done, undefined),
    );
    return;
  }
  if (signal?.aborted) {
    done(markNotSent(abortError(ctx.name, signal)));
    return;
  }
  // A connect left with only what a wait in our own queue spared of the acquire timeout says
  // nothing about the server when it runs out; nor does one that waited for others' clients, or
  // for the connection pacer's allowance.
  let saturated = isSaturated(pool) || timeoutMs < ctx.acquireTimeout;
  const deadline = deadlineAt ?? Date.now() + timeoutMs;
  let gaveUp = false;
  /** Set while waiting for the pacer's allowance. */
  let pacerWait: PacerWait | undefined;
  const stopWaiting = () => {
    gaveUp = true;
    lease.stopConnecting = undefined;
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    pacerWait?.cancel();
    pacerWait = undefined;
  };
  const giveUp = (err: Error) => {
    if (gaveUp) return;
    stopWaiting();
    if (saturated && err instanceof AcquireTimeoutError) WAITED_ON_OTHERS.add(err);
    done(markNotSent(err));
  };
  const timer = setTimeout(
    () => giveUp(new AcquireTimeoutError(ctx.name, ctx.acquireTimeout)),
    Math.max(1, deadline - Date.now()),
  );
  const onAbort = signal && (() => giveUp(abortError(ctx.name, signal)));
  if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true });
  // The lease may be ended while it waits (endpoint down, end()): no timer of ours outlives it.
  lease.stopConnecting = () => {
    if (!gaveUp) stopWaiting();
  };
  // After an outage, opening a connection waits for the pacer's allowance (an idle client is
  // taken as usual): `connect` runs again when a client comes back or an attempt settles.
  const { pacer } = ctx;
  let ticket = -1;
  let openedFrom = -1;
  const connect = (): void => {
    pacerWait = undefined;
    if (gaveUp) return;
    if (pacer.active && opensConnection(pool)) {
      ticket = pacer.tryOpen();
      if (ticket === MUST_WAIT) {
        saturated = true;
        pacerWait = pacer.wait(connect);
        return;
      }
    }
    // Timed from here, so that a wait for the pacer is not counted as the server's connect time.
    openedFrom = ctx.timings !== undefined && opensConnection(pool) ? performance.now() : -1;
    pool.connect(onConnected);
  };
  const onConnected = (err: Error | undefined, client: PgClientLike | undefined): void => {
    // The attempt's outcome is the server's, whether or not this caller still waits for it.
    if (ticket >= 0) pacer.settled(ticket, !err && client !== undefined);
    if (openedFrom >= 0 && !err && client !== undefined) {
      ctx.connectionCreated(performance.now() - openedFrom);
    }
    if (gaveUp) {
      client?.release();
      return;
    }
    stopWaiting();
    if (err || client === undefined) {
      const failure = err ?? new Error('pool.connect() returned no client');
      // pg's own connectionTimeoutMillis fires on a full pool too; a refused connect is the
      // server's, however full the pool was.
      if (saturated && classify(failure) === 'timeout') WAITED_ON_OTHERS.add(failure);
      done(markNotSent(failure));
    } else {
      prepare(ctx, client, lease, attempt, timeoutMs, signal, done, deadline);
    }
  };
  connect();
}

/**
 * Readies a client from the pool: gives it its owner, starts tracking its transaction status,
 * and when enabled checks a long-idle client with a cheap query and a new primary connection for
 * being writable. A client that fails a check is destroyed and another taken, invisibly to the
 * caller.
 */
function prepare(
  ctx: AcquireContext,
  client: PgClientLike,
  lease: AcquiringLease,
  attempt: number,
  timeoutMs: number,
  signal: AbortSignalLike | undefined,
  done: Done<PgClientLike>,
  deadlineAt: number | undefined,
): void {
  adopt(client, lease);
  trackTransactionStatus(client);
  const check = ctx.hygiene.checks ? ctx.hygiene.checkFor(client, ctx.role) : undefined;
  if (check === undefined) {
    done(null, client);
    return;
  }
  // The check and any replacement share the acquire's one deadline, and the call's signal ends
  // them: a check is part of taking a connection.
  const deadline = deadlineAt ?? Date.now() + timeoutMs;
  let settled = false;
  const onAbort = signal && (() => finish(abortError(ctx.name, signal), true));
  const finish = (err: Error | null, aborted = false) => {
    if (settled) return;
    settled = true;
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    if (err === null) {
      done(null, client);
      return;
    }
    disown(client);
    client.release(err);
    if (aborted) {
      done(markNotSent(err));
      return;
    }
    afterFailedCheck(ctx, err, lease, attempt, timeoutMs, signal, done, deadline);
  };
  if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true });
  const checkTimeout = Math.max(1, Math.min(ctx.hygiene.checkTimeout, deadline - Date.now()));
  runCheck(client, check, checkTimeout, ctx.name, (err) => finish(err));
}

/** After a failed check: a demoted primary is reported, anything else is replaced in time. */
function afterFailedCheck(
  ctx: AcquireContext,
  err: Error,
  lease: AcquiringLease,
  attempt: number,
  timeoutMs: number,
  signal: AbortSignalLike | undefined,
  done: Done<PgClientLike>,
  deadline: number,
): void {
  if (isReadOnlyPrimaryError(err)) {
    ctx.suspectDemotion(err);
    done(markNotSent(err));
  } else if (attempt >= ctx.maxConcurrent) {
    done(markNotSent(err));
  } else {
    ctx.logger.debug(
      { endpoint: ctx.name, err: describeError(err) },
      'resilient-pool: a pooled connection failed its check; replaced',
    );
    // The replacement gets what is left of the same deadline, and the signal.
    if (deadline - Date.now() <= 0) {
      done(markNotSent(new AcquireTimeoutError(ctx.name, ctx.acquireTimeout, err)));
      return;
    }
    acquireClient(ctx, timeoutMs, signal, lease, done, attempt + 1, deadline);
  }
}
