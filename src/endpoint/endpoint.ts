/**
 * One wrapped pool and its guards: admission (closed, down, circuit, the bounded queue), the
 * circuit breaker, counters, and the leases in flight. The work itself is one pipeline: a
 * StatementAttempt for statements, a HeldClient for checkouts; both acquire through acquire.ts.
 *
 * Hot path (permit free, circuit closed, idle client in the pool): one promise, pg's callback
 * forms for connect and query, no timer, no Error, no p-retry, no opossum.
 */
import { classify, type ErrorClass, isHealthFailure } from '../classify.js';
import { EndpointDownError, PoolClosedError, withoutStack } from '../errors.js';
import { parseLsn } from '../health/lsn.js';
import type { EndpointHealth } from '../health/types.js';
import { adaptiveLimitFor } from '../options/adaptive-limit.js';
import { generationsFor, sweepIntervalMs } from '../options/outlier.js';
import type { ResolvedEndpointConfig, ResolvedOptions } from '../options/resolved.js';
import type { PgClientLike, PgPoolLike, QueryResultLike } from '../pg-like.js';
import type { BalancerTarget } from '../routing/balancers/balancer.js';
import { describeError } from '../telemetry/describe-error.js';
import type {
  BreakerState,
  EndpointRole,
  RejectReason,
  ResilientPoolEvents,
} from '../telemetry/events.js';
import { LatencyWindow } from '../telemetry/latency-window.js';
import type { LoggerLike } from '../telemetry/logger.js';
import type {
  ConnectionTimings,
  EndpointAttributes,
  ObservedEndpoint,
} from '../telemetry/observer.js';
import type { AbortSignalLike } from './abort-signal-like.js';
import { type Done, waitedOnOthers } from './acquire.js';
import { ActiveLeases } from './active-leases.js';
import { AdaptiveLimit } from './adaptive-limit.js';
import { ADMITTED, type Admission, QUEUED, type Refused, refused } from './admission.js';
import { ConnectPacer } from './connect-pacer.js';
import { EndpointBreaker } from './endpoint-breaker.js';
import { Gate } from './gate.js';
import { HeldClient } from './held-client.js';
import { ConnectionHygiene } from './hygiene.js';
import { type Statement, StatementAttempt } from './statement-attempt.js';

export { endpointOf } from './held-client.js';
export type { QueryText, Statement } from './statement-attempt.js';

/** What an endpoint tells its owner (the pool's events and logs). */
export interface EndpointHooks {
  breaker(payload: ResilientPoolEvents['breaker']): void;
  reject(payload: ResilientPoolEvents['reject']): void;
  leak(payload: ResilientPoolEvents['leak']): void;
  /** The primary answered read-only (25006): it may have been demoted. */
  demoted(endpoint: Endpoint): void;
  /** The endpoint was declared down, or is up again. */
  down(payload: ResilientPoolEvents['down']): void;
  up(payload: ResilientPoolEvents['up']): void;
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
  /** Statements still running past `breaker.slowCallMs` (each counted once, as a failure). */
  slowCalls: number;
  retries: number;
  /** Retries after a failure here, by the failure's class. */
  retriesByReason: Record<ErrorClass, number>;
  rejected: Record<RejectReason, number>;
  /** Circuit state changes, by the state entered. */
  breakerTransitions: { open: number; halfOpen: number; closed: number };
  /** Times the health monitor took this replica out of read routing, and put it back. */
  ejections: number;
  readmissions: number;
}

/** pg's own default pool size, for a pool that does not expose `options.max`. */
const PG_DEFAULT_MAX = 10;

/** Latency windows of 6 slots of 10 s: percentiles over the last minute. */
export const LATENCY_SLOT_MS = 10_000;
const LATENCY_SLOTS = 6;

export class Endpoint implements BalancerTarget, ObservedEndpoint {
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
    slowCalls: 0,
    retries: 0,
    retriesByReason: {
      connection: 0,
      timeout: 0,
      resource: 0,
      unavailable: 0,
      conflict: 0,
      'read-only': 0,
      'stale-statement': 0,
      'outcome-unknown': 0,
      aborted: 0,
      permanent: 0,
    },
    rejected: {
      'circuit-open': 0,
      'queue-full': 0,
      'acquire-timeout': 0,
      timeout: 0,
      aborted: 0,
      closed: 0,
      down: 0,
    },
    breakerTransitions: { open: 0, halfOpen: 0, closed: 0 },
    ejections: 0,
    readmissions: 0,
  };
  /**
   * Statement attempts here, from admission (a place in the queue included) until settled, and
   * the part of it spent waiting for a client (our queue, then the wrapped pool's): stats()
   * reports their percentiles over the last minute (the housekeeping timer rotates them).
   */
  readonly latency = new LatencyWindow(LATENCY_SLOTS);
  readonly waits = new LatencyWindow(LATENCY_SLOTS);
  /** Connection timings for the metrics; set by the pool only while metrics are on. */
  timings: ConnectionTimings | undefined;
  /** Where the wrapped pool connects (server.address, server.port, db.namespace). */
  attributes: EndpointAttributes = {};
  /** What the health monitor knows (state, lag); stays 'unknown' without a monitor. */
  readonly health: EndpointHealth = {
    state: 'unknown',
    inRecovery: null,
    lagBytes: null,
    lagMs: null,
    ejections: 0,
    reason: null,
  };
  /**
   * How far this replica has replayed, as last seen (health probes, or a read that needed it).
   * Replay only moves forward, so an old value is a safe lower bound.
   */
  replayLsn: bigint | undefined;
  /** Statements running and clients checked out: what `kill` and the slow-call sweep see. */
  readonly active = new ActiveLeases();
  /** Advanced by `sweep()`; statements are stamped with it when sent. */
  generation = 0;
  readonly acquireTimeout: number;
  readonly hygiene: ConnectionHygiene;
  readonly maxConcurrent: number;
  /**
   * With `queue.adaptiveLimit`: moves the gate's limit with the time statements take on the
   * server. Undefined when off, and then no statement is timed for it.
   */
  readonly limiter: AdaptiveLimit | undefined;
  /**
   * Whether statements are timed from sending to answer: for the adaptive limit, and for the
   * queue-delay bound (its measure of how long statements run here).
   */
  readonly measuresRtt: boolean;
  private closed = false;
  /** Set while the endpoint is declared down: why, for the refusal every new call gets. */
  private down: { reason: string; cause: unknown } | undefined;
  /** False while the health monitor holds this endpoint back (ejected or lagging). */
  private routable = true;
  private readonly slowCallsEnabled: boolean;
  /**
   * A statement in flight this many sweeps of the generation counter is slow: the sweep's period
   * comes from the options (options/outlier.ts), so this is noticed between `slowCallMs` and
   * `slowCallMs` plus two periods after the statement was sent.
   */
  private readonly slowGenerations: number;
  /** Slow start's share of reads (routing/slow-start.ts): 1 outside a ramp. */
  share = 1;
  /** Paces the connections opened after an outage (connect-pacer.ts). */
  readonly pacer: ConnectPacer;

  constructor(
    config: ResolvedEndpointConfig,
    role: EndpointRole,
    options: ResolvedOptions,
    private readonly hooks: EndpointHooks,
    readonly logger: LoggerLike,
  ) {
    this.name = config.name;
    this.role = role;
    this.weight = config.weight;
    this.pool = config.pool;
    this.maxConcurrent = config.maxConcurrent;
    this.acquireTimeout = options.queue.acquireTimeout;
    this.hygiene = new ConnectionHygiene(options.hygiene);
    this.slowCallsEnabled = options.breaker.enabled && options.breaker.slowCallMs > 0;
    const sweepMs = sweepIntervalMs(options.breaker, options.recovery);
    this.slowGenerations =
      sweepMs === undefined
        ? Number.POSITIVE_INFINITY
        : generationsFor(options.breaker.slowCallMs, sweepMs);
    this.pacer = new ConnectPacer(
      config.pool.options?.max ?? PG_DEFAULT_MAX,
      options.recovery.connectPacing.enabled,
    );
    this.gate = new Gate({
      name: config.name,
      maxConcurrent: config.maxConcurrent,
      maxWaiting: options.queue.maxWaiting,
      acquireTimeout: options.queue.acquireTimeout,
      maxQueueDelayMs: options.queue.maxQueueDelayMs,
    });
    this.breaker = new EndpointBreaker(config.name, options.breaker, (state, previous) =>
      this.onBreakerChange(state, previous),
    );
    const adaptive = options.queue.adaptiveLimit;
    this.limiter =
      adaptive === false
        ? undefined
        : new AdaptiveLimit(adaptiveLimitFor(adaptive, config.maxConcurrent), this.gate);
    this.measuresRtt = this.limiter !== undefined || options.queue.maxQueueDelayMs > 0;
  }

  /** In flight plus queued: the least-busy balancer's measure. */
  load(): number {
    return this.gate.inUse + this.gate.waiting;
  }

  /** Whether a new call could be admitted now (up, circuit admits, queue not full, not closed). */
  isUsable(): boolean {
    return (
      !this.closed &&
      this.down === undefined &&
      this.routable &&
      this.breaker.admits &&
      this.gate.canAdmit
    );
  }

  /** Whether this is a hot standby, so a statement that ran here wrote nothing. */
  get isHotStandby(): boolean {
    // A replica the probes found writable (an old primary listed as a replica) does not qualify.
    return this.role === 'replica' && this.health.inRecovery !== false;
  }

  /** Whether the endpoint is declared down (see `markDown`). */
  get isDown(): boolean {
    return this.down !== undefined;
  }

  /** Asks the replica how far it has replayed; keeps the highest position seen. Never throws. */
  async refreshReplayLsn(signal?: AbortSignal): Promise<void> {
    try {
      const result = await this.execute(
        this.admit(),
        {
          text: 'SELECT pg_last_wal_replay_lsn()::text AS lsn',
          values: undefined,
          captureToken: false,
        },
        signal,
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
   * Admission, synchronously (see admission.ts): a permit taken at once, a place in the queue, or
   * the typed refusal (closed, down, circuit open, queue full). The pool checks this before
   * building any promise, so a refusal costs one rejected promise.
   */
  admit(): Admission {
    this.counters.calls++;
    if (this.closed) return this.refuse('closed', new PoolClosedError());
    if (this.down !== undefined) return this.refuse('down', this.downError());
    if (!this.breaker.admits) return this.refuse('circuit-open', this.breaker.openError());
    if (this.gate.tryAcquire()) return ADMITTED;
    if (this.gate.isFull) return this.refuse('queue-full', this.gate.fullError());
    return QUEUED;
  }

  /**
   * Runs one statement after `admit()`; `admitted` is what admit() returned. Rejects with the
   * driver's error unchanged, or a typed one of this library's.
   */
  execute(
    admitted: Admission,
    statement: Statement,
    signal: AbortSignalLike | undefined,
  ): Promise<QueryResultLike> {
    if (admitted.kind === 'refused') return Promise.reject(admitted.error);
    const startedAt = performance.now();
    if (admitted === ADMITTED) {
      return this.runStatement(statement, signal, this.acquireTimeout, startedAt);
    }
    return this.gate.acquire(signal).then(
      () => this.runStatement(statement, signal, this.acquireTimeLeft(startedAt), startedAt),
      (err: unknown) => Promise.reject(this.onGateFailure(err)),
    );
  }

  /**
   * Checks a client out for the caller after `admit()`. The permit is held until the client is
   * released, so clients handed out count against the endpoint's concurrency like queries do.
   */
  checkout(admitted: Admission, signal: AbortSignalLike | undefined): Promise<PgClientLike> {
    if (admitted.kind === 'refused') return Promise.reject(admitted.error);
    // Taken here, synchronously inside the caller's connect(), so the stack shows the caller.
    const acquiredAt =
      this.hygiene.leakThreshold === undefined
        ? undefined
        : (new Error('client acquired here').stack ?? '');
    const startedAt = performance.now();
    if (admitted === ADMITTED) {
      return this.runCheckout(signal, acquiredAt, this.acquireTimeout, startedAt);
    }
    return this.gate.acquire(signal).then(
      () => this.runCheckout(signal, acquiredAt, this.acquireTimeLeft(startedAt), startedAt),
      (err: unknown) => Promise.reject(this.onGateFailure(err)),
    );
  }

  /**
   * Declares the endpoint down (its probe did not answer): new calls are refused at once with
   * EndpointDownError, the circuit is held open, and everything in flight is ended (connections
   * destroyed). Lifted by `markUp()` after a passing probe.
   */
  markDown(reason: string, cause?: unknown): void {
    if (this.down !== undefined || this.closed) return;
    this.down = { reason, cause };
    this.logger.warn(
      { endpoint: this.name, role: this.role, reason, inFlight: this.active.size },
      `resilient-pool: endpoint "${this.name}" declared down: ${reason}`,
    );
    this.breaker.holdOpen();
    // Coming back, it opens one connection first, then doubles (storm control).
    this.pacer.restart();
    this.hooks.down({ endpoint: this.name, role: this.role, reason });
    this.endEverything(() => this.downError());
  }

  /** A probe passed (or a failover re-pointed the endpoint): calls are admitted again. */
  markUp(): void {
    const down = this.down;
    if (down === undefined) return;
    this.down = undefined;
    this.breaker.releaseHold();
    this.logger.info(
      { endpoint: this.name, role: this.role },
      `resilient-pool: endpoint "${this.name}" is up again`,
    );
    this.hooks.up({ endpoint: this.name, role: this.role, reason: down.reason });
  }

  /**
   * Ends everything at this endpoint: calls waiting in its queue are refused (nothing sent) and
   * statements and checkouts in flight are ended, their connections destroyed. Waiters go first:
   * the permits the kills free must not start them on a server that is gone.
   */
  endEverything(makeError: () => Error): void {
    this.gate.rejectAll(makeError);
    for (const lease of [...this.active]) lease.kill(makeError());
  }

  /** A refusal while down: stackless, one per call, as refusals come by the thousand. */
  private downError(): EndpointDownError {
    const down = this.down ?? { reason: 'declared down', cause: undefined };
    return withoutStack(() => new EndpointDownError(this.name, down.reason, down.cause));
  }

  /**
   * Advances the generation and counts statements in flight for too long as health failures,
   * each once. Run by the pool's housekeeping, every `sweepIntervalMs()` (options/outlier.ts).
   */
  sweep(): void {
    const generation = ++this.generation;
    if (!this.slowCallsEnabled || this.active.size === 0) return;
    for (const lease of this.active) {
      if (
        lease.sentAt < 0 ||
        lease.slowCounted ||
        generation - lease.sentAt < this.slowGenerations
      ) {
        continue;
      }
      lease.slowCounted = true;
      this.counters.slowCalls++;
      this.logger.debug({ endpoint: this.name }, 'resilient-pool: a statement is running slow');
      this.breaker.recordHealthFailure();
    }
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

  // ---- what the pipeline asks of its endpoint (StatementContext, CheckoutContext) -------------

  /** The server answered (a result, or a SQL error): the endpoint is healthy. */
  answered(sqlError: Error | null, wasSlow: boolean): void {
    if (sqlError) this.counters.sqlErrors++;
    else this.counters.successes++;
    // A slow call already counted once, as a failure; its late answer is not a second outcome.
    if (this.breaker.isClosed && !wasSlow) this.breaker.recordSuccess();
  }

  /** A read-only answer from the primary (25006, or 55000 in recovery): it was demoted. */
  isDemotionSign(err: Error): boolean {
    if (this.role !== 'primary' || classify(err) !== 'read-only') return false;
    this.suspectDemotion(err);
    return true;
  }

  /** Counts a sign that the primary is no longer writable against its breaker, and says so. */
  suspectDemotion(err: Error): void {
    this.counters.failures++;
    this.breaker.recordHealthFailure();
    this.logger.warn(
      { endpoint: this.name, err: describeError(err) },
      'resilient-pool: the primary refused a write as read-only; it may have been demoted',
    );
    this.hooks.demoted(this);
  }

  releasePermit(): void {
    this.gate.release();
    this.pacer.clientReturned();
  }

  /**
   * The server answered a statement `rttMs` after it was sent (`nowMs`: performance.now() at the
   * answer); `didDrop`: it timed out or the server was out of resources. The permits held now
   * (this statement's included) are the calls in flight. An answered statement also tells the
   * gate's delay bound how long statements run here.
   */
  rttSample(rttMs: number, didDrop: boolean, nowMs: number): void {
    this.limiter?.sample(rttMs, this.gate.inUse, didDrop, nowMs);
    if (!didDrop) this.gate.served(rttMs, nowMs);
  }

  /**
   * A statement attempt settled. Times are `performance.now()` readings: admission, the client's
   * arrival (negative when none came), the end.
   */
  statementSettled(startedAt: number, clientAt: number, endedAt: number, err: Error | null): void {
    this.latency.record(endedAt - startedAt);
    this.clientWaited(startedAt, clientAt < 0 ? endedAt : clientAt, clientAt < 0 ? err : null);
    if (clientAt >= 0) this.timings?.used(this, endedAt - clientAt);
  }

  /** A call's wait for a client ended (`err`: why none came, or null). */
  clientWaited(startedAt: number, endedAt: number, err: Error | null): void {
    const ms = endedAt - startedAt;
    this.waits.record(ms);
    this.timings?.waited(
      this,
      ms,
      (err as { code?: unknown } | null)?.code === 'E_ACQUIRE_TIMEOUT',
    );
  }

  /** A checked-out client went back to its pool after `ms`. */
  clientUsed(ms: number): void {
    this.timings?.used(this, ms);
  }

  /** A new connection of the wrapped pool opened in `ms` (observed only while metrics are on). */
  connectionCreated(ms: number): void {
    this.timings?.created(this, ms);
  }

  /** Rotates the latency windows: called every LATENCY_SLOT_MS by the pool's housekeeping. */
  rotateLatency(): void {
    this.latency.rotate();
    this.waits.rotate();
  }

  leak(payload: ResilientPoolEvents['leak']): void {
    this.hooks.leak(payload);
  }

  // ---- admission plumbing ----------------------------------------------------------------------

  /** What is left of `queue.acquireTimeout` after waiting in the queue since `queuedAt`. */
  private acquireTimeLeft(queuedAt: number): number {
    return Math.max(1, this.acquireTimeout - (performance.now() - queuedAt));
  }

  /** One statement, holding a permit; the permit is freed before the call settles. */
  private runStatement(
    statement: Statement,
    signal: AbortSignalLike | undefined,
    connectTimeout: number,
    startedAt: number,
  ): Promise<QueryResultLike> {
    return new Promise<QueryResultLike>((resolve, reject) => {
      const finish: Done<QueryResultLike> = (err, result) => {
        // The client is back in the pool (or destroyed): a call waiting to open one may go.
        this.releasePermit();
        if (err) reject(this.afterFailure(err));
        else resolve(result as QueryResultLike);
      };
      if (this.breaker.isClosed) {
        new StatementAttempt(this, statement, signal, startedAt, finish).start(connectTimeout);
      } else {
        this.asProbe<QueryResultLike>(
          (done) =>
            new StatementAttempt(this, statement, signal, startedAt, done).start(connectTimeout),
          finish,
        );
      }
    });
  }

  /** One checkout, holding a permit that the client's release frees (or a failure, at once). */
  private runCheckout(
    signal: AbortSignalLike | undefined,
    acquiredAt: string | undefined,
    connectTimeout: number,
    startedAt: number,
  ): Promise<PgClientLike> {
    return new Promise<PgClientLike>((resolve, reject) => {
      const finish: Done<PgClientLike> = (err, client) => {
        if (err) {
          this.releasePermit();
          reject(this.afterFailure(err));
        } else {
          resolve(client as PgClientLike);
        }
      };
      const start = (done: Done<PgClientLike>) =>
        new HeldClient(this, signal, acquiredAt, startedAt, done).start(connectTimeout);
      if (this.breaker.isClosed) start(finish);
      else this.asProbe(start, finish);
    });
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

  /** A wait in our own queue ended without a permit: local saturation, never a health failure. */
  private onGateFailure(err: unknown): unknown {
    const code = (err as { code?: unknown }).code;
    if (code === 'E_ACQUIRE_TIMEOUT') return this.rejected('acquire-timeout', err);
    if (code === 'E_QUEUE_FULL') return this.rejected('queue-full', err);
    if (code === 'E_ABORTED') return this.rejected('aborted', err);
    if (code === 'E_TIMEOUT') return this.rejected('timeout', err);
    if (code === 'E_POOL_CLOSED') return this.rejected('closed', err);
    if (code === 'E_ENDPOINT_DOWN') return this.rejected('down', err);
    return err;
  }

  /** Bookkeeping for an attempt that failed; returns the error for the caller. */
  private afterFailure(err: Error): Error {
    const code = (err as { code?: unknown }).code;
    if (code === 'E_CIRCUIT_OPEN') return this.rejected('circuit-open', err);
    if (code === 'E_ENDPOINT_DOWN') return this.rejected('down', err);
    if (!isHealthFailure(err)) return err; // a SQL error, already counted by answered()
    // No client in time because others held them all: our saturation, not the server's.
    if (waitedOnOthers(err)) return this.rejected('acquire-timeout', err);
    this.breaker.recordFailure(err);
    // No connection in time from a server asked to open one: counted, and a refusal too.
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

  private refuse(reason: RejectReason, err: Error): Refused {
    return refused(this.rejected(reason, err));
  }

  private onBreakerChange(state: BreakerState, previous: BreakerState): void {
    const transitions = this.counters.breakerTransitions;
    if (state === 'open') transitions.open++;
    else if (state === 'half-open') transitions.halfOpen++;
    else transitions.closed++;
    // An outage: the connections opened once it is over are paced.
    if (state === 'open') this.pacer.restart();
    const level = state === 'open' ? 'warn' : 'info';
    this.logger[level](
      { endpoint: this.name, role: this.role, state, previous },
      `resilient-pool: circuit of "${this.name}" is ${state}`,
    );
    this.hooks.breaker({ endpoint: this.name, role: this.role, state, previous });
  }
}
