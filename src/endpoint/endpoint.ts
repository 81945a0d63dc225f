/**
 * One wrapped pool and its guards: the gate (bounded queue), the circuit breaker, counters. Every
 * statement the library runs passes through `query()` or `checkout()` here.
 *
 * Hot path (permit free, circuit closed, idle client in the pool): no timer, no Error, no p-retry,
 * one closure-free pass through opossum.
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
import { EndpointBreaker, isBreakerRejection } from './breaker.js';
import { Gate } from './gate.js';
import { markNotSent } from './retry.js';

export type QueryText = string | QueryConfigLike;

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

const CLIENT_DEAD_MESSAGES = [
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
];

/**
 * Runs one statement on a client of the pool. Uses pg's callback form so the client goes back to
 * the pool synchronously, inside pg's own callback: with a promise the release would wait for a
 * microtask, and a second error message arriving in the same TCP chunk (a FATAL right after a
 * failed statement, as when the postmaster dies) would find a checked-out client with no 'error'
 * listener and crash the process.
 */
async function runQuery(
  this: Endpoint,
  text: QueryText,
  values: readonly unknown[] | undefined,
): Promise<QueryResultLike> {
  const client = await this.checkoutRaw();
  return new Promise<QueryResultLike>((resolve, reject) => {
    client.query(text, values, (err, result) => {
      if (err) {
        // A client that lost its connection must not go back to the pool; one that answered
        // with a SQL error is fine to reuse.
        client.release(isHealthFailure(err) ? err : undefined);
        if (CLIENT_DEAD_MESSAGES.some((m) => err.message?.startsWith(m))) markNotSent(err);
        reject(err);
      } else {
        client.release();
        resolve(result as QueryResultLike);
      }
    });
  });
}

async function runCheckout(this: Endpoint): Promise<PgClientLike> {
  return this.checkoutRaw();
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
    return !this.closed && this.breaker.admits && this.gate.waiting < this.gate.maxWaiting;
  }

  /** Runs one statement on a pooled client. Rejects with the driver's error unchanged. */
  async query(
    text: QueryText,
    values: readonly unknown[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<QueryResultLike> {
    const waiting = this.admit(signal);
    // Awaiting only when there is a wait keeps the common path one microtask shorter.
    if (waiting !== undefined) await waiting;
    try {
      const result = await this.breaker.run(this, runQuery, text, values);
      this.counters.successes++;
      return result;
    } catch (err) {
      throw this.onRunFailure(err);
    } finally {
      this.gate.release();
    }
  }

  /**
   * Checks a client out for the caller (connect()). The permit is held until the client is
   * released, so clients handed out count against the endpoint's concurrency like queries do.
   */
  async checkout(signal: AbortSignal | undefined): Promise<PgClientLike> {
    const waiting = this.admit(signal);
    if (waiting !== undefined) await waiting;
    let client: PgClientLike;
    try {
      client = await this.breaker.run(this, runCheckout, undefined, undefined);
    } catch (err) {
      this.gate.release();
      throw this.onRunFailure(err);
    }
    this.counters.successes++;
    return this.wrapRelease(client);
  }

  /**
   * pool.connect(), bounded by the acquire timeout when it has to open a new connection. When an
   * idle client exists, pg hands it over on the next tick, so no timer is armed: the common case
   * stays timer-free. Errors here happened before anything was sent.
   */
  checkoutRaw(): Promise<PgClientLike> {
    if (this.pool.idleCount > 0) {
      return this.pool.connect().catch((err: unknown) => Promise.reject(markNotSent(err)));
    }
    return new Promise<PgClientLike>((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(markNotSent(new AcquireTimeoutError(this.name, this.acquireTimeout)));
      }, this.acquireTimeout);
      this.pool.connect().then(
        (client) => {
          clearTimeout(timer);
          // A connection that arrives after the caller gave up goes straight back to the pool.
          if (timedOut) client.release();
          else resolve(client);
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (!timedOut) reject(markNotSent(err));
        },
      );
    });
  }

  /** Refuses new calls; waiters get PoolClosedError. In-flight work finishes normally. */
  close(): void {
    this.closed = true;
    this.gate.rejectAll(() => new PoolClosedError());
    this.breaker.shutdown();
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  /** Takes a gate permit, or throws a typed refusal. */
  private admit(signal: AbortSignal | undefined): Promise<void> | undefined {
    this.counters.calls++;
    if (this.closed) throw this.rejected('closed', new PoolClosedError());
    if (!this.breaker.admits) throw this.rejected('circuit-open', this.breaker.openError());
    if (this.gate.tryAcquire()) return undefined;
    return this.gate.acquire(signal).catch((err: unknown) => {
      throw this.onGateFailure(err);
    });
  }

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

  private onRunFailure(err: unknown): unknown {
    if (isBreakerRejection(err)) {
      // opossum refused (a half-open probe was already out): same meaning as our own check.
      return this.rejected('circuit-open', this.breaker.openError());
    }
    if ((err as { code?: unknown }).code === 'E_ACQUIRE_TIMEOUT') {
      return this.rejected('acquire-timeout', err);
    }
    if (isHealthFailure(err)) {
      this.counters.failures++;
      // Per-call failures are debug: during an outage they come by the thousand; the breaker's
      // state changes carry the news at warn.
      this.logger.debug(
        { endpoint: this.name, role: this.role, err: describeError(err) },
        'resilient-pool: endpoint call failed',
      );
    } else {
      // The server answered (a SQL error): the endpoint is healthy.
      this.counters.sqlErrors++;
    }
    return err;
  }

  private rejected(reason: RejectReason, err: unknown): unknown {
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
  private wrapRelease(client: PgClientLike): PgClientLike {
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
        (client as { off?: (e: string, l: (err: Error) => void) => void }).off?.('error', onError);
        this.gate.release();
      }
      client.release = poolRelease;
      return poolRelease.call(client, err ?? broken);
    };
    return client;
  }
}

/** What a log line may say about an error: never a connection string. */
export function describeError(err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  return { name: e.name, code: e.code, message: e.message };
}
