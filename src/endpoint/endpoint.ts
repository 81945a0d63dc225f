/**
 * One wrapped pool and its guards: the gate (bounded queue), the circuit breaker, counters. Every
 * statement the library runs passes through `query()` or `checkout()` here.
 *
 * Hot path (permit free, circuit closed, idle client in the pool): one promise, pg's callback
 * forms for connect and query, no timer, no Error, no p-retry, no opossum.
 */
import { isHealthFailure } from '../classify.js';
import { AcquireTimeoutError, abortError, PoolClosedError } from '../errors.js';
import { parseLsn } from '../health/lsn.js';
import type { EndpointHealth } from '../health/monitor.js';
import type { ResolvedEndpointConfig, ResolvedOptions } from '../options.js';
import type { PgClientLike, PgPoolLike, QueryConfigLike, QueryResultLike } from '../pg-like.js';
import type { BalancerTarget } from '../routing/balancer.js';
import type {
  BreakerState,
  EndpointRole,
  RejectReason,
  ResilientPoolEvents,
} from '../telemetry/events.js';
import type { LoggerLike } from '../telemetry/logger.js';
import { EndpointBreaker } from './breaker.js';
import { cancelBackend } from './cancel.js';
import { Gate } from './gate.js';
import { ConnectionHygiene, isReadOnlyPrimaryError, runCheck, stampRelease } from './hygiene.js';
import { markNotSent } from './retry.js';
import { afterReadyForQuery, inTransaction, trackTransactionStatus } from './session-state.js';

export type QueryText = string | QueryConfigLike;

type Done<T> = (err: Error | null, value?: T) => void;

/** What an endpoint tells its owner (the pool's events and logs). */
export interface EndpointHooks {
  breaker(payload: ResilientPoolEvents['breaker']): void;
  reject(payload: ResilientPoolEvents['reject']): void;
  leak(payload: ResilientPoolEvents['leak']): void;
  /** The primary answered read-only (25006): it may have been demoted. */
  demoted(endpoint: Endpoint): void;
}

/** Counters kept per endpoint; plain numbers, read by stats(). */
export interface EndpointCounters {
  calls: number;
  /** Calls the server answered successfully. */
  successes: number;
  /** Calls the server answered with an error (SQL errors: 23505, 42P01, ...). */
  sqlErrors: number;
  /** Health failures: connection lost or refused, timeouts, resource exhaustion. */
  failures: number;
  retries: number;
  rejected: Record<RejectReason, number>;
}

/** pg errors of a client that was already unusable: the statement was never written. */
const CLIENT_DEAD_MESSAGES = [
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
];

function wasClientDead(err: Error): boolean {
  const message = err.message;
  return typeof message === 'string' && CLIENT_DEAD_MESSAGES.some((m) => message.startsWith(m));
}

export class Endpoint implements BalancerTarget {
  readonly name: string;
  readonly role: EndpointRole;
  readonly weight: number;
  readonly pool: PgPoolLike;
  readonly gate: Gate;
  readonly breaker: EndpointBreaker;
  readonly counters: EndpointCounters = {
    calls: 0,
    successes: 0,
    sqlErrors: 0,
    failures: 0,
    retries: 0,
    rejected: {
      'circuit-open': 0,
      'queue-full': 0,
      'acquire-timeout': 0,
      timeout: 0,
      aborted: 0,
      closed: 0,
    },
  };
  /** What the health monitor knows (state, lag); stays 'unknown' without a monitor. */
  readonly health: EndpointHealth = {
    state: 'unknown',
    lagBytes: null,
    lagMs: null,
    ejections: 0,
    reason: null,
  };
  private closed = false;
  /**
   * How far this replica has replayed, as last seen (health probes, or a read that needed it).
   * Replay only moves forward, so an old value is a safe lower bound.
   */
  replayLsn: bigint | undefined;
  /** False while the health monitor holds this endpoint back (ejected or lagging). */
  private routable = true;
  private readonly acquireTimeout: number;
  private readonly hygiene: ConnectionHygiene;

  constructor(
    config: ResolvedEndpointConfig,
    role: EndpointRole,
    options: ResolvedOptions,
    private readonly hooks: EndpointHooks,
    private readonly logger: LoggerLike,
  ) {
    this.name = config.name;
    this.role = role;
    this.weight = config.weight;
    this.pool = config.pool;
    this.acquireTimeout = options.queue.acquireTimeout;
    this.hygiene = new ConnectionHygiene(options.hygiene);
    this.gate = new Gate({
      name: config.name,
      maxConcurrent: config.maxConcurrent,
      maxWaiting: options.queue.maxWaiting,
      acquireTimeout: options.queue.acquireTimeout,
    });
    this.breaker = new EndpointBreaker(config.name, options.breaker, (state, previous) =>
      this.onBreakerChange(state, previous),
    );
  }

  /** In flight plus queued: the least-busy balancer's measure. */
  load(): number {
    return this.gate.inUse + this.gate.waiting;
  }

  /** Whether a new call could be admitted now (circuit admits, queue not full, not closed). */
  isUsable(): boolean {
    return !this.closed && this.routable && this.breaker.admits && this.gate.canAdmit;
  }

  /** Asks the replica how far it has replayed; keeps the highest position seen. Never throws. */
  async refreshReplayLsn(): Promise<void> {
    try {
      const result = await this.query(
        'SELECT pg_last_wal_replay_lsn()::text AS lsn',
        undefined,
        undefined,
      );
      this.noteReplayLsn(parseLsn((result.rows[0] as { lsn?: string } | undefined)?.lsn));
    } catch {
      // An unreachable replica simply does not qualify.
    }
  }

  noteReplayLsn(lsn: bigint | undefined): void {
    if (lsn !== undefined && (this.replayLsn === undefined || lsn > this.replayLsn)) {
      this.replayLsn = lsn;
    }
  }

  /** Set by the health monitor: whether the router may send this endpoint reads. */
  setRoutable(routable: boolean): void {
    this.routable = routable;
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  /**
   * Admission, synchronously: `true` when a permit was taken at once, `false` when the call must
   * wait in the queue, or the typed refusal (closed, circuit open, queue full) as an Error. The
   * pool checks this before building any promise, so a refusal costs one rejected promise.
   */
  admit(): boolean | Error {
    this.counters.calls++;
    if (this.closed) return this.rejected('closed', new PoolClosedError());
    if (!this.breaker.admits) return this.rejected('circuit-open', this.breaker.openError());
    if (this.gate.tryAcquire()) return true;
    if (this.gate.isFull) return this.rejected('queue-full', this.gate.fullError());
    return false;
  }

  /** Runs one statement on a pooled client. Rejects with the driver's error unchanged. */
  query(
    text: QueryText,
    values: readonly unknown[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<QueryResultLike> {
    return this.queryAdmitted(this.admit(), text, values, signal);
  }

  /** `query()` after `admit()`; `admitted` is what admit() returned. */
  queryAdmitted(
    admitted: boolean | Error,
    text: QueryText,
    values: readonly unknown[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<QueryResultLike> {
    if (admitted === true) return this.queryWithPermit(text, values, this.acquireTimeout, signal);
    if (admitted !== false) return Promise.reject(admitted);
    const queuedAt = Date.now();
    return this.gate.acquire(signal).then(
      () => this.queryWithPermit(text, values, this.remainingAcquireTime(queuedAt), signal),
      (err: unknown) => Promise.reject(this.onGateFailure(err)),
    );
  }

  /**
   * Checks a client out for the caller (connect()). The permit is held until the client is
   * released, so clients handed out count against the endpoint's concurrency like queries do.
   */
  checkout(signal: AbortSignal | undefined): Promise<PgClientLike> {
    return this.checkoutAdmitted(this.admit(), signal);
  }

  /** `checkout()` after `admit()`. */
  checkoutAdmitted(
    admitted: boolean | Error,
    signal: AbortSignal | undefined,
  ): Promise<PgClientLike> {
    // Taken here, synchronously inside the caller's connect(), so the stack shows the caller.
    const acquiredAt =
      this.hygiene.leakThreshold === undefined
        ? undefined
        : (new Error('client acquired here').stack ?? '');
    if (admitted === true) return this.checkoutWithPermit(this.acquireTimeout, signal, acquiredAt);
    if (admitted !== false) return Promise.reject(admitted);
    const queuedAt = Date.now();
    return this.gate.acquire(signal).then(
      () => this.checkoutWithPermit(this.remainingAcquireTime(queuedAt), signal, acquiredAt),
      (err: unknown) => Promise.reject(this.onGateFailure(err)),
    );
  }

  /** Refuses new calls. Calls already admitted or queued go on; see `drained()`. */
  close(): void {
    this.closed = true;
  }

  /** Resolves once no call holds a permit or waits for one. */
  drained(): Promise<void> {
    return this.gate.idle();
  }

  /** Fails whatever still waits and stops the breaker's timers (end() after draining). */
  shutdown(): void {
    this.closed = true;
    this.gate.rejectAll(() => new PoolClosedError());
    this.breaker.shutdown();
  }

  // ---- the attempt ---------------------------------------------------------------------------

  /** What is left of `queue.acquireTimeout` after waiting in the queue since `queuedAt`. */
  private remainingAcquireTime(queuedAt: number): number {
    return Math.max(1, this.acquireTimeout - (Date.now() - queuedAt));
  }

  private queryWithPermit(
    text: QueryText,
    values: readonly unknown[] | undefined,
    connectTimeout: number,
    signal: AbortSignal | undefined,
  ): Promise<QueryResultLike> {
    return new Promise<QueryResultLike>((resolve, reject) => {
      const finish: Done<QueryResultLike> = (err, result) => {
        this.gate.release();
        if (err) reject(this.afterFailure(err));
        else resolve(result as QueryResultLike);
      };
      if (this.breaker.isClosed) this.attemptQuery(text, values, connectTimeout, signal, finish);
      else {
        this.asProbe<QueryResultLike>(
          (done) => this.attemptQuery(text, values, connectTimeout, signal, done),
          finish,
        );
      }
    });
  }

  private checkoutWithPermit(
    connectTimeout: number,
    signal: AbortSignal | undefined,
    acquiredAt: string | undefined,
  ): Promise<PgClientLike> {
    return new Promise<PgClientLike>((resolve, reject) => {
      const finish: Done<PgClientLike> = (err, client) => {
        if (err) {
          this.gate.release();
          reject(this.afterFailure(err));
        } else {
          resolve(this.holdPermitUntilRelease(client as PgClientLike, acquiredAt));
        }
      };
      const attempt = (done: Done<PgClientLike>) =>
        this.connect(connectTimeout, signal, (err, client) => {
          if (err) return done(err);
          if (signal?.aborted) {
            // Aborted while the client was being checked: give it back, report the abort.
            this.returnClient(client as PgClientLike, () =>
              done(markNotSent(abortError(this.name, signal))),
            );
            return;
          }
          this.answered(done, null, client);
        });
      if (this.breaker.isClosed) attempt(finish);
      else this.asProbe(attempt, finish);
    });
  }

  /**
   * One statement on one pooled client, `done` called exactly once. pg's callback form lets the
   * client go back to the pool synchronously inside pg's own callback: with a promise the release
   * would wait for a microtask, and a second error message in the same TCP chunk (a FATAL right
   * after a failed statement, as when the postmaster dies) would find a checked-out client with
   * no 'error' listener and crash the process.
   *
   * With a `signal` (a call timeout or the caller's abort), an abort while the statement runs
   * cancels it on the server and ends the call at once; the client is then destroyed rather than
   * reused, so a late cancel request can never hit the next caller's statement.
   */
  private attemptQuery(
    text: QueryText,
    values: readonly unknown[] | undefined,
    connectTimeout: number,
    signal: AbortSignal | undefined,
    done: Done<QueryResultLike>,
  ): void {
    this.connect(connectTimeout, signal, (connectError, client) => {
      if (connectError || client === undefined) {
        done(connectError ?? new Error('pool.connect() returned no client'));
        return;
      }
      if (signal?.aborted) {
        // Aborted while the client was being checked (a validation query): nothing was sent.
        this.returnClient(client, () => done(markNotSent(abortError(this.name, signal))));
        return;
      }
      let abandoned = false;
      let onAbort: (() => void) | undefined;
      if (signal !== undefined) {
        onAbort = () => {
          abandoned = true;
          void cancelBackend(client);
          done(abortError(this.name, signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      client.query(text, values, (err, result) => {
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
        if (abandoned) {
          client.release(new Error('statement cancelled by the caller; connection discarded'));
          return;
        }
        if (err) {
          // A client that lost its connection must not go back to the pool, nor one that found
          // the primary read-only (demoted); one that answered with a SQL error is reusable.
          const broken = isHealthFailure(err) || this.isDemotionSign(err);
          if (broken) {
            client.release(err);
            if (wasClientDead(err)) markNotSent(err);
            done(err);
          } else {
            afterReadyForQuery(client, (connectionError) => {
              if (connectionError) {
                client.release(connectionError);
                this.answered(done, err);
              } else {
                this.returnClient(client, () => this.answered(done, err));
              }
            });
          }
        } else {
          this.returnClient(client, () => this.answered(done, null, result));
        }
      });
    });
  }

  /**
   * Gives a client back to the pool, first rolling back a transaction left open on it (a
   * `query('BEGIN')` through the pool) so the next caller never inherits one.
   */
  private returnClient(client: PgClientLike, then: () => void): void {
    if (this.hygiene.stampReleases) stampRelease(client);
    if (!inTransaction(client)) {
      client.release();
      then();
      return;
    }
    this.logger.warn(
      { endpoint: this.name },
      'resilient-pool: a statement left a transaction open on a pooled connection; rolled back (use transaction() or connect() for multi-statement work)',
    );
    client.query('ROLLBACK', undefined, (err) => {
      client.release(err ?? undefined);
      then();
    });
  }

  /**
   * pool.connect(), bounded by the acquire timeout when it has to open a new connection. When an
   * idle client exists, pg hands it over on the next tick, so no timer is armed: the common case
   * stays timer-free. Errors here happened before anything was sent.
   */
  private connect(
    timeoutMs: number,
    signal: AbortSignal | undefined,
    done: Done<PgClientLike>,
    attempt = 0,
  ): void {
    if (this.pool.idleCount > 0 && signal === undefined) {
      this.pool.connect((err, client) =>
        err
          ? done(markNotSent(err))
          : this.prepare(client as PgClientLike, attempt, timeoutMs, signal, done),
      );
      return;
    }
    if (signal?.aborted) {
      done(markNotSent(abortError(this.name, signal)));
      return;
    }
    let gaveUp = false;
    const giveUp = (err: Error) => {
      if (gaveUp) return;
      gaveUp = true;
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      done(markNotSent(err));
    };
    const timer = setTimeout(
      () => giveUp(new AcquireTimeoutError(this.name, this.acquireTimeout)),
      timeoutMs,
    );
    const onAbort = signal && (() => giveUp(abortError(this.name, signal)));
    if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true });
    this.pool.connect((err, client) => {
      if (gaveUp) {
        // A connection that arrives after the caller gave up goes straight back to the pool.
        client?.release();
        return;
      }
      gaveUp = true;
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      if (err) done(markNotSent(err));
      else this.prepare(client as PgClientLike, attempt, timeoutMs, signal, done);
    });
  }

  /**
   * Readies a client from the pool: starts tracking its transaction status, and when enabled
   * checks a long-idle client with a cheap query and a new primary connection for being
   * writable. A client that fails is destroyed and another taken, invisibly to the caller.
   */
  private prepare(
    client: PgClientLike,
    attempt: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    done: Done<PgClientLike>,
  ): void {
    trackTransactionStatus(client);
    if (!this.hygiene.checks) {
      done(null, client);
      return;
    }
    const check = this.hygiene.checkFor(client, this.role);
    if (check === undefined) {
      done(null, client);
      return;
    }
    runCheck(client, check, this.hygiene.checkTimeout, this.name, (err) => {
      if (err === null) {
        done(null, client);
        return;
      }
      client.release(err);
      if (isReadOnlyPrimaryError(err)) {
        this.suspectDemotion(err);
        done(markNotSent(err));
      } else if (attempt >= this.gate.maxConcurrent) {
        done(markNotSent(err));
      } else {
        this.logger.debug(
          { endpoint: this.name, err: describeError(err) },
          'resilient-pool: a pooled connection failed its check; replaced',
        );
        // The replacement is bounded like any new connection: acquire timeout and signal.
        this.connect(timeoutMs, signal, done, attempt + 1);
      }
    });
  }

  /** 25006 from the primary: it is in recovery, so it was demoted (or a read-only replica). */
  private isDemotionSign(err: Error): boolean {
    if (this.role !== 'primary' || (err as { code?: unknown }).code !== '25006') return false;
    this.suspectDemotion(err);
    return true;
  }

  /** Counts a sign that the primary is no longer writable against its breaker, and says so. */
  private suspectDemotion(err: Error): void {
    this.counters.failures++;
    this.breaker.recordHealthFailure();
    this.logger.warn(
      { endpoint: this.name, err: describeError(err) },
      'resilient-pool: the primary refused a write as read-only; it may have been demoted',
    );
    this.hooks.demoted(this);
  }

  /** The server answered (a result, or a SQL error): the endpoint is healthy. */
  private answered<T>(done: Done<T>, sqlError: Error | null, value?: T): void {
    if (sqlError) this.counters.sqlErrors++;
    else this.counters.successes++;
    if (this.breaker.isClosed) this.breaker.recordSuccess();
    done(sqlError, value);
  }

  /** Runs a callback-style attempt as the breaker's half-open probe. */
  private asProbe<T>(attempt: (done: Done<T>) => void, finish: Done<T>): void {
    this.breaker
      .probe(
        () => new Promise<T>((res, rej) => attempt((err, v) => (err ? rej(err) : res(v as T)))),
      )
      .then(
        (value) => finish(null, value),
        (err: Error) => finish(err),
      );
  }

  // ---- refusals and failures -----------------------------------------------------------------

  private onGateFailure(err: unknown): unknown {
    const code = (err as { code?: unknown }).code;
    if (code === 'E_ACQUIRE_TIMEOUT') {
      // A full gate that never drains means calls hang at this endpoint: a health failure.
      this.breaker.recordFailure(err);
      return this.rejected('acquire-timeout', err);
    }
    if (code === 'E_QUEUE_FULL') return this.rejected('queue-full', err);
    if (code === 'E_ABORTED') return this.rejected('aborted', err);
    if (code === 'E_TIMEOUT') return this.rejected('timeout', err);
    if (code === 'E_POOL_CLOSED') return this.rejected('closed', err);
    return err;
  }

  /** Bookkeeping for an attempt that failed; returns the error for the caller. */
  private afterFailure(err: Error): Error {
    const code = (err as { code?: unknown }).code;
    if (code === 'E_CIRCUIT_OPEN') return this.rejected('circuit-open', err);
    if (!isHealthFailure(err)) return err; // a SQL error, already counted by answered()
    this.breaker.recordFailure(err);
    // No connection in time: counted as a refusal (nothing was sent), like a queue timeout.
    if (code === 'E_ACQUIRE_TIMEOUT') return this.rejected('acquire-timeout', err);
    this.counters.failures++;
    // Per-call failures are debug: during an outage they come by the thousand; the breaker's
    // state changes carry the news at warn.
    this.logger.debug(
      { endpoint: this.name, role: this.role, err: describeError(err) },
      'resilient-pool: endpoint call failed',
    );
    return err;
  }

  private rejected<E>(reason: RejectReason, err: E): E {
    this.counters.rejected[reason]++;
    this.hooks.reject({ endpoint: this.name, reason });
    return err;
  }

  private onBreakerChange(state: BreakerState, previous: BreakerState): void {
    const level = state === 'open' ? 'warn' : 'info';
    this.logger[level](
      { endpoint: this.name, role: this.role, state, previous },
      `resilient-pool: circuit of "${this.name}" is ${state}`,
    );
    this.hooks.breaker({ endpoint: this.name, role: this.role, state, previous });
  }

  /**
   * Wraps `release()` of a client handed to the caller. On release: the gate permit is freed
   * exactly once; a transaction left open is rolled back (or the client destroyed if that fails);
   * with `resetOnRelease: 'discard'` the session is reset with DISCARD ALL; with leak detection, a
   * client held past the threshold is reported with the stack of the call that took it. A
   * connection error on the held, idle client is caught here: pg-pool removes its own listener
   * while a client is checked out, and an unheard 'error' would crash the process.
   */
  private holdPermitUntilRelease(
    client: PgClientLike,
    acquiredAt: string | undefined,
  ): PgClientLike {
    CLIENT_ENDPOINT.set(client, this.name);
    const poolRelease = client.release;
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken = err;
      this.logger.warn(
        { endpoint: this.name, err: describeError(err) },
        'resilient-pool: checked-out client lost its connection',
      );
    };
    client.on?.('error', onError);
    const leakTimer = acquiredAt === undefined ? undefined : this.watchForLeak(acquiredAt);
    const backToPool = (err?: Error | boolean) => {
      if (this.hygiene.stampReleases && !err) stampRelease(client);
      poolRelease.call(client, err);
      this.gate.release();
    };
    client.release = (err?: Error | boolean) => {
      client.off?.('error', onError);
      if (leakTimer !== undefined) clearTimeout(leakTimer);
      // Until the pool has it back, a second release is the caller's bug, as in pg.
      client.release = alreadyReleased;
      const destroy = err ?? broken;
      if (destroy) return backToPool(destroy);
      // Released from inside a failed statement's callback, the transaction status is only
      // known once pg has read the ReadyForQuery that follows.
      afterReadyForQuery(client, (connectionError) => {
        if (connectionError) return backToPool(connectionError);
        const resets: string[] = [];
        if (inTransaction(client)) {
          resets.push('ROLLBACK');
          this.logger.warn(
            { endpoint: this.name },
            'resilient-pool: a client was released inside a transaction; rolled back',
          );
        }
        if (this.hygiene.resetOnRelease === 'discard') resets.push('DISCARD ALL');
        runResets(client, resets, backToPool);
      });
    };
    return client;
  }

  /** With leak detection on, a timer that reports the checkout if it outlives the threshold. */
  private watchForLeak(acquiredAt: string): ReturnType<typeof setTimeout> | undefined {
    const threshold = this.hygiene.leakThreshold;
    if (threshold === undefined) return undefined;
    const takenAt = Date.now();
    const timer = setTimeout(() => {
      const heldMs = Date.now() - takenAt;
      this.logger.warn(
        { endpoint: this.name, heldMs, acquiredAt },
        `resilient-pool: a client of "${this.name}" has been held for ${heldMs} ms without release (possible leak)`,
      );
      this.hooks.leak({ endpoint: this.name, heldMs, acquiredAt });
    }, threshold);
    timer.unref();
    return timer;
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
  client.query(first, undefined, (err) =>
    err ? backToPool(err) : runResets(client, rest, backToPool),
  );
}

function alreadyReleased(): never {
  throw new Error('Release called on client which has already been released to the pool.');
}

/** Which endpoint a client handed out by `checkout()` belongs to. */
const CLIENT_ENDPOINT = new WeakMap<object, string>();

/** The endpoint name of a client from `connect()`, for errors that must name it. */
export function endpointOf(client: object): string | undefined {
  return CLIENT_ENDPOINT.get(client);
}

/** What a log line may say about an error: never a connection string. */
export function describeError(err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  return { name: e.name, code: e.code, message: e.message };
}
