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
import { type ConnectionHygiene, isReadOnlyPrimaryError, runCheck } from './hygiene.js';
import { adopt, disown, type Lease } from './lease.js';

/** A lease being acquired; `stopConnecting` is set while a bounded wait for a client runs. */
export interface AcquiringLease extends Lease {
  /** Ends the wait now (its timer and listener); a client that arrives later goes back. */
  stopConnecting: (() => void) | undefined;
}

import { markNotSent } from '../retry/policy.js';
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

/** Whether `pool.connect()` would have to wait for a client someone else holds. */
function isSaturated(pool: PgPoolLike): boolean {
  if (pool.waitingCount > 0) return true;
  const max = pool.options?.max ?? PG_DEFAULT_MAX;
  return pool.idleCount === 0 && pool.totalCount >= max;
}

/**
 * Takes a client for `lease`. When an idle client exists and there is no signal, pg hands it over
 * on the next tick, so no timer is armed: the common case stays timer-free. Otherwise the wait is
 * bounded by `timeoutMs` and `signal`; a client that arrives after the caller gave up goes back.
 */
export function acquireClient(
  ctx: AcquireContext,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  lease: AcquiringLease,
  done: Done<PgClientLike>,
  attempt = 0,
): void {
  const { pool } = ctx;
  if (pool.idleCount > 0 && signal === undefined) {
    pool.connect((err, client) =>
      err || client === undefined
        ? done(markNotSent(err ?? new Error('pool.connect() returned no client')))
        : prepare(ctx, client, lease, attempt, timeoutMs, signal, done),
    );
    return;
  }
  if (signal?.aborted) {
    done(markNotSent(abortError(ctx.name, signal)));
    return;
  }
  const saturated = isSaturated(pool);
  let gaveUp = false;
  const stopWaiting = () => {
    gaveUp = true;
    lease.stopConnecting = undefined;
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  };
  const giveUp = (err: Error) => {
    if (gaveUp) return;
    stopWaiting();
    if (saturated && err instanceof AcquireTimeoutError) WAITED_ON_OTHERS.add(err);
    done(markNotSent(err));
  };
  const timer = setTimeout(
    () => giveUp(new AcquireTimeoutError(ctx.name, ctx.acquireTimeout)),
    timeoutMs,
  );
  const onAbort = signal && (() => giveUp(abortError(ctx.name, signal)));
  if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true });
  // The lease may be ended while it waits (endpoint down, end()): no timer of ours outlives it.
  lease.stopConnecting = () => {
    if (!gaveUp) stopWaiting();
  };
  pool.connect((err, client) => {
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
      prepare(ctx, client, lease, attempt, timeoutMs, signal, done);
    }
  });
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
  signal: AbortSignal | undefined,
  done: Done<PgClientLike>,
): void {
  adopt(client, lease);
  trackTransactionStatus(client);
  const check = ctx.hygiene.checks ? ctx.hygiene.checkFor(client, ctx.role) : undefined;
  if (check === undefined) {
    done(null, client);
    return;
  }
  runCheck(client, check, ctx.hygiene.checkTimeout, ctx.name, (err) => {
    if (err === null) {
      done(null, client);
      return;
    }
    disown(client);
    client.release(err);
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
      // The replacement is bounded like any new connection: acquire timeout and signal.
      acquireClient(ctx, timeoutMs, signal, lease, done, attempt + 1);
    }
  });
}
