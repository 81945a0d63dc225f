/**
 * One wrapped pool and its guards: the gate (bounded queue), the circuit breaker, counters. Every
 * statement the library runs passes through `query()` or `checkout()` here.
 *
 * Hot path (permit free, circuit closed, idle client in the pool): one promise, pg's callback
 * forms for connect and query, no timer, no Error, no p-retry, no opossum.
 */
import { isHealthFailure } from '../classify.js';
import { AcquireTimeoutError, PoolClosedError } from '../errors.js';
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
import { Gate } from './gate.js';
import { markNotSent } from './retry.js';

export type QueryText = string | QueryConfigLike;

type Done<T> = (err: Error | null, value?: T) => void;

/** What an endpoint tells its owner (the pool's events and logs). */
export interface EndpointHooks {
  breaker(payload: ResilientPoolEvents['breaker']): void;
  reject(payload: ResilientPoolEvents['reject']): void;
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
    rejected: { 'circuit-open': 0, 'queue-full': 0, 'acquire-timeout': 0, aborted: 0, closed: 0 },
  };
  private closed = false;
  private readonly acquireTimeout: number;

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
    return !this.closed && this.breaker.admits && this.gate.canAdmit;
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
    if (admitted === true) return this.queryWithPermit(text, values, this.acquireTimeout);
    if (admitted !== false) return Promise.reject(admitted);
    const queuedAt = Date.now();
    return this.gate.acquire(signal).then(
      () => this.queryWithPermit(text, values, this.remainingAcquireTime(queuedAt)),
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
    if (admitted === true) return this.checkoutWithPermit(this.acquireTimeout);
    if (admitted !== false) return Promise.reject(admitted);
    const queuedAt = Date.now();
    return this.gate.acquire(signal).then(
      () => this.checkoutWithPermit(this.remainingAcquireTime(queuedAt)),
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
  ): Promise<QueryResultLike> {
    return new Promise<QueryResultLike>((resolve, reject) => {
      const finish: Done<QueryResultLike> = (err, result) => {
        this.gate.release();
        if (err) reject(this.afterFailure(err));
        else resolve(result as QueryResultLike);
      };
      if (this.breaker.isClosed) this.attemptQuery(text, values, connectTimeout, finish);
      else {
        this.asProbe<QueryResultLike>(
          (done) => this.attemptQuery(text, values, connectTimeout, done),
          finish,
        );
      }
    });
  }

  private checkoutWithPermit(connectTimeout: number): Promise<PgClientLike> {
    return new Promise<PgClientLike>((resolve, reject) => {
      const finish: Done<PgClientLike> = (err, client) => {
        if (err) {
          this.gate.release();
          reject(this.afterFailure(err));
        } else {
          resolve(this.holdPermitUntilRelease(client as PgClientLike));
        }
      };
      const attempt = (done: Done<PgClientLike>) =>
        this.connect(connectTimeout, (err, client) =>
          err ? done(err) : this.answered(done, null, client),
        );
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
   */
  private attemptQuery(
    text: QueryText,
    values: readonly unknown[] | undefined,
    connectTimeout: number,
    done: Done<QueryResultLike>,
  ): void {
    this.connect(connectTimeout, (connectError, client) => {
      if (connectError || client === undefined) {
        done(connectError ?? new Error('pool.connect() returned no client'));
        return;
      }
      client.query(text, values, (err, result) => {
        if (err) {
          // A client that lost its connection must not go back to the pool; one that answered
          // with a SQL error is fine to reuse.
          const broken = isHealthFailure(err);
          client.release(broken ? err : undefined);
          if (wasClientDead(err)) markNotSent(err);
          if (broken) done(err);
          else this.answered(done, err);
        } else {
          client.release();
          this.answered(done, null, result);
        }
      });
    });
  }

  /**
   * pool.connect(), bounded by the acquire timeout when it has to open a new connection. When an
   * idle client exists, pg hands it over on the next tick, so no timer is armed: the common case
   * stays timer-free. Errors here happened before anything was sent.
   */
  private connect(timeoutMs: number, done: Done<PgClientLike>): void {
    if (this.pool.idleCount > 0) {
      this.pool.connect((err, client) => (err ? done(markNotSent(err)) : done(null, client)));
      return;
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      done(markNotSent(new AcquireTimeoutError(this.name, this.acquireTimeout)));
    }, timeoutMs);
    this.pool.connect((err, client) => {
      clearTimeout(timer);
      if (timedOut) {
        // A connection that arrives after the caller gave up goes straight back to the pool.
        client?.release();
      } else if (err) {
        done(markNotSent(err));
      } else {
        done(null, client);
      }
    });
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
   * Frees the gate permit exactly once when the caller releases the client, and keeps a
   * connection error on a held, idle client from crashing the process (pg-pool removes its own
   * listener while a client is checked out).
   */
  private holdPermitUntilRelease(client: PgClientLike): PgClientLike {
    CLIENT_ENDPOINT.set(client, this.name);
    const poolRelease = client.release;
    let permitHeld = true;
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken = err;
      this.logger.warn(
        { endpoint: this.name, err: describeError(err) },
        'resilient-pool: checked-out client lost its connection',
      );
    };
    client.on?.('error', onError);
    client.release = (err?: Error | boolean) => {
      if (permitHeld) {
        permitHeld = false;
        client.off?.('error', onError);
        this.gate.release();
      }
      client.release = poolRelease;
      return poolRelease.call(client, err ?? broken);
    };
    return client;
  }
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
