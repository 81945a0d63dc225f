/**
 * A client checked out for the caller (`connect()`, transactions): acquired like any statement's
 * client, then held until the caller releases it. While held it keeps its owner (lease.ts), so a
 * connection error on it is heard and remembered instead of crashing the process; on release a
 * broken client is destroyed, an open transaction rolled back, and the session optionally reset.
 */
import { abortError } from '../errors.js';
import type { PgClientLike } from '../pg-like.js';
import { markNotSent } from '../retry/policy.js';
import { describeError } from '../telemetry/describe-error.js';
import type { ResilientPoolEvents } from '../telemetry/events.js';
import type { AbortSignalLike } from './abort-signal-like.js';
import { type AcquireContext, type AcquiringLease, acquireClient, type Done } from './acquire.js';
import type { ActiveLeases } from './active-leases.js';
import { type EndpointBreaker, stampConnection } from './endpoint-breaker.js';
import { stampRelease } from './hygiene.js';
import { type ActiveLease, destroySocket, disown } from './lease.js';
import { afterReadyForQuery, inTransaction } from './session-state.js';

/** What a held client needs of its endpoint beyond acquiring. */
export interface CheckoutContext extends AcquireContext {
  readonly active: ActiveLeases;
  /** Frees the endpoint permit the checkout holds; called once, when the client is back. */
  releasePermit(): void;
  leak(payload: ResilientPoolEvents['leak']): void;
  /** The wait for a client ended (`performance.now()` readings; `err`: why none came). */
  clientWaited(startedAt: number, endedAt: number, err: Error | null): void;
  /** The client went back to its pool after being held `ms`. */
  clientUsed(ms: number): void;
  /** Stamps the connections it first sees (see endpoint-breaker.ts). */
  readonly breaker: EndpointBreaker;
}

const CONNECTING = 0;
const HELD = 1;
/** Released by the caller; resets running before the client goes back. */
const RELEASING = 2;
const DONE = 3;
type Phase = typeof CONNECTING | typeof HELD | typeof RELEASING | typeof DONE;

/** Which endpoint a client handed out by `connect()` belongs to. */
const CLIENT_ENDPOINT = new WeakMap<object, string>();

/** The endpoint name of a client from `connect()`, for errors that must name it. */
export function endpointOf(client: object): string | undefined {
  return CLIENT_ENDPOINT.get(client);
}

export class HeldClient implements ActiveLease, AcquiringLease {
  readonly sentAt = -1;
  slowCounted = false;
  listPrev: ActiveLease | undefined = undefined;
  listNext: ActiveLease | undefined = undefined;
  stopConnecting: (() => void) | undefined;
  private phase: Phase = CONNECTING;
  private client: PgClientLike | undefined;
  /** The connection error seen while held, or why the endpoint ended it. */
  private broken: Error | undefined;
  private leakTimer: ReturnType<typeof setTimeout> | undefined;
  /** `performance.now()` when the client was handed to the caller. */
  private heldSince = 0;

  constructor(
    private readonly ctx: CheckoutContext,
    private readonly signal: AbortSignalLike | undefined,
    /** The stack of the caller's connect(), when leak detection wants it. */
    private readonly acquiredAt: string | undefined,
    /** `performance.now()` at admission (before any wait in the endpoint's queue). */
    private readonly startedAt: number,
    private readonly done: Done<PgClientLike>,
  ) {}

  start(connectTimeout: number): void {
    this.ctx.active.add(this);
    acquireClient(this.ctx, connectTimeout, this.signal, this, this.onClient);
  }

  private readonly onClient = (err: Error | null, client?: PgClientLike): void => {
    if (this.phase !== CONNECTING) {
      if (client !== undefined) {
        disown(client);
        client.release(this.broken ?? new Error('checkout ended'));
      }
      return;
    }
    if (err !== null || client === undefined) {
      this.fail(err ?? new Error('no client'));
      return;
    }
    if (this.signal?.aborted) {
      // Aborted while the client was being checked: give it back, report the abort.
      disown(client);
      client.release();
      this.fail(markNotSent(abortError(this.ctx.name, this.signal)));
      return;
    }
    this.phase = HELD;
    this.client = client;
    // A connection first used by a checkout is stamped too, so a statement that later loses it
    // is judged by when it was opened, not by when a statement first ran on it.
    stampConnection(client, this.ctx.breaker);
    this.heldSince = performance.now();
    this.ctx.clientWaited(this.startedAt, this.heldSince, null);
    this.hand(client);
  };

  /** Wraps `release()` and hands the client to the caller. */
  private hand(client: PgClientLike): void {
    CLIENT_ENDPOINT.set(client, this.ctx.name);
    const poolRelease = client.release;
    this.watchForLeak();
    client.release = (err?: Error | boolean) => {
      // Until the pool has it back, a second release is the caller's bug, as in pg.
      client.release = alreadyReleased;
      this.phase = RELEASING;
      if (this.leakTimer !== undefined) clearTimeout(this.leakTimer);
      const backToPool = (destroyWith?: Error | boolean) => {
        if (this.ctx.hygiene.stampReleases && !destroyWith) stampRelease(client);
        disown(client);
        poolRelease.call(client, destroyWith);
        this.settle();
      };
      const destroy = err || this.broken;
      if (destroy) {
        backToPool(destroy);
        return;
      }
      // Released from inside a failed statement's callback, the transaction status is only
      // known once pg has read the ReadyForQuery that follows.
      afterReadyForQuery(client, (connectionError) => {
        if (connectionError) {
          backToPool(connectionError);
          return;
        }
        const resets: string[] = [];
        if (inTransaction(client)) {
          resets.push('ROLLBACK');
          this.ctx.logger.warn(
            { endpoint: this.ctx.name },
            'resilient-pool: a client was released inside a transaction; rolled back',
          );
        }
        if (this.ctx.hygiene.resetOnRelease === 'discard') resets.push('DISCARD ALL');
        runResets(client, resets, backToPool);
      });
    };
    this.done(null, client);
  }

  connectionLost(err: Error): void {
    if (this.phase !== HELD) return; // while releasing, the reset's own callback reports it
    this.broken ??= err;
    this.ctx.logger.warn(
      { endpoint: this.ctx.name, err: describeError(err) },
      'resilient-pool: checked-out client lost its connection',
    );
  }

  /**
   * The endpoint ends the checkout: the socket is destroyed, so a statement the caller is running
   * fails at once and the release destroys the client.
   */
  kill(reason: Error): void {
    if (this.phase === CONNECTING) {
      this.stopConnecting?.();
      this.broken = reason;
      this.fail(markNotSent(reason));
      return;
    }
    if (this.phase === HELD || this.phase === RELEASING) {
      this.broken ??= reason;
      if (this.client !== undefined) destroySocket(this.client);
    }
  }

  private fail(err: Error): void {
    this.phase = DONE;
    this.ctx.active.delete(this);
    this.ctx.clientWaited(this.startedAt, performance.now(), err);
    this.done(err);
  }

  private settle(): void {
    this.phase = DONE;
    this.client = undefined;
    this.ctx.active.delete(this);
    this.ctx.clientUsed(performance.now() - this.heldSince);
    this.ctx.releasePermit();
  }

  /** With leak detection on, a timer that reports the checkout if it outlives the threshold. */
  private watchForLeak(): void {
    const threshold = this.ctx.hygiene.leakThreshold;
    const acquiredAt = this.acquiredAt;
    if (threshold === undefined || acquiredAt === undefined) return;
    const takenAt = performance.now();
    const name = this.ctx.name;
    this.leakTimer = setTimeout(() => {
      // libuv times the timer from its loop clock, cached at the start of the loop turn that set
      // it, so the clock read here can show a hair less than the threshold that has passed.
      const heldMs = Math.max(threshold, Math.round(performance.now() - takenAt));
      this.ctx.logger.warn(
        { endpoint: name, heldMs, acquiredAt },
        `resilient-pool: a client of "${name}" has been held for ${heldMs} ms without release (possible leak)`,
      );
      this.ctx.leak({ endpoint: name, heldMs, acquiredAt });
    }, threshold);
    this.leakTimer.unref();
  }
}

/** Runs reset statements in order, then hands the client back (destroying it on failure). */
function runResets(
  client: PgClientLike,
  statements: readonly string[],
  backToPool: (err?: Error) => void,
): void {
  const [first, ...rest] = statements;
  if (first === undefined) {
    backToPool();
    return;
  }
  client.query(first, undefined, (err) => {
    if (err) {
      backToPool(err);
      return;
    }
    // DISCARD ALL deallocated the session's prepared statements: pg must parse them again, or
    // the next use of each name fails with 26000.
    if (first === 'DISCARD ALL') forgetParsedStatements(client);
    runResets(client, rest, backToPool);
  });
}

/** Empties pg's per-connection record of parsed statement names (name -> text). */
function forgetParsedStatements(client: PgClientLike): void {
  const connection = (client as { connection?: { parsedStatements?: unknown } }).connection;
  if (typeof connection?.parsedStatements === 'object' && connection.parsedStatements !== null) {
    connection.parsedStatements = {};
  }
}

function alreadyReleased(): never {
  throw new Error('Release called on client which has already been released to the pool.');
}
