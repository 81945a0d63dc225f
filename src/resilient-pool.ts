/**
 * ResilientPool: composes endpoints, the router and the retry policy behind a surface that is
 * usable wherever a pg.Pool is (query in both call shapes, connect/release, end, the counts and
 * the 'error' event).
 */
import pRetry from 'p-retry';
import { type CacheCallOptions, type CacheHandle, ReadThroughCache } from './cache/index.js';
import {
  CONNECT_KEYS,
  callOptionsError,
  END_KEYS,
  READ_KEYS,
  TRANSACTION_KEYS,
  WRITE_KEYS,
} from './call-options.js';
import { classify, isHealthFailure } from './classify.js';
import { endpointAtLeast } from './consistency/replica-at.js';
import { Sessions } from './consistency/session.js';
import {
  asToken,
  attachToken,
  CAPTURE_SQL,
  type ConsistencyToken,
  tokenPosition,
} from './consistency/token.js';
import { withDeadline } from './deadline.js';
import { describeError, Endpoint, type QueryText } from './endpoint/endpoint.js';
import {
  backoffDelay,
  mayRetryStatement,
  RetryBudget,
  sleep,
  wasNotSent,
} from './endpoint/retry.js';
import { AbortedError, ConfigError, NoHealthyEndpointError, PoolClosedError } from './errors.js';
import { HealthMonitor } from './health/monitor.js';
import { type ResilientPoolOptions, type ResolvedOptions, resolveOptions } from './options.js';
import type { PgClientLike, QueryConfigLike, QueryResultLike } from './pg-like.js';
import { createBalancer } from './routing/balancer.js';
import { classifySql } from './routing/classify-sql.js';
import { CandidatePrimary } from './routing/primary-candidates.js';
import { Router } from './routing/router.js';
import { type EventName, type ResilientPoolEvents, SafeEmitter } from './telemetry/events.js';
import { createLogger, type LoggerLike } from './telemetry/logger.js';
import { type PoolStats, snapshotStats } from './telemetry/stats.js';
import {
  runTransaction,
  type Transaction,
  type TransactionAttempt,
  type TransactionOptions,
} from './transaction.js';
import { withTimeout } from './util/with-timeout.js';

/** Options every call takes. */
export interface CallOptions {
  /**
   * Aborts the call: a wait (queue, connect, retry sleep) ends at once, and a running statement
   * is cancelled on the server. The call rejects with AbortedError.
   */
  signal?: AbortSignal;
  /**
   * Bounds the whole call, in ms: queue wait, connect, retries and the statement. When it elapses
   * the statement is cancelled on the server and the call rejects with TimeoutError (E_TIMEOUT).
   * @default undefined (bounded only by the pool's own timeouts)
   */
  timeout?: number;
}

export interface ReadOptions extends CallOptions {
  /**
   * Whether the statement may be re-sent after it may have reached a server. Reads run on hot
   * standbys, which cannot write, so they default to true; set false for a read whose functions
   * have side effects.
   * @default true
   */
  idempotent?: boolean;
  /**
   * Read only from an endpoint that has replayed up to this consistency token (from
   * `consistencyToken(writeResult)`): a replica that has caught up, else the primary after
   * `routing.consistencyWaitMs`. Never returns data older than the write. Inside `db.session()`
   * the session's latest token applies without passing it. Not combined with `cache`.
   * @default undefined
   */
  after?: ConsistencyToken;
  /**
   * Read through the pool's cache: `true` for the pool's settings, or per-call settings
   * (`{ ttl, grace, tags, key, scope }`). Needs the pool's `cache` option.
   * @default false
   */
  cache?: boolean | CacheCallOptions;
}

export interface WriteOptions extends CallOptions {
  /**
   * Lets the pool re-send the statement after a connection failure even if it may have run
   * (for example an upsert that is safe to apply twice).
   * @default false
   */
  idempotent?: boolean;
  /**
   * Cache tags this write changes: once it succeeds (or fails in a way that may have applied
   * it), every cached read with any of these tags is invalidated, in every instance sharing
   * the cache's Redis. Ignored when the pool has no cache.
   * @default []
   */
  invalidates?: readonly string[];
  /**
   * Capture the write's consistency token (one cheap query after the write, on its connection):
   * read it with `consistencyToken(result)`, pass it as `read(..., { after })`.
   * @default true inside `db.session()`, else false
   */
  captureToken?: boolean;
}

export interface ConnectOptions extends CallOptions {
  /**
   * 'write' checks out a client of the primary; 'read' one of a usable replica (or the primary
   * as fallback).
   * @default 'write'
   */
  role?: 'read' | 'write';
}

export interface EndOptions {
  /**
   * Longest wait for in-flight calls before the wrapped pools are ended anyway, in ms.
   * @default 10000
   */
  timeout?: number;
}

type Values = readonly unknown[];
type Callback<R> = (err: Error | null, result?: QueryResultLike<R>) => void;
type Row = Record<string, unknown>;

const READ = 0;
const WRITE = 1;
type Role = typeof READ | typeof WRITE;

/** A call that failed once and is now in the retry path; built only after a failure. */
interface FailedCall {
  role: Role;
  text: QueryText | null;
  values: Values | undefined;
  signal: AbortSignal | undefined;
  idempotent: boolean;
  tried: Set<Endpoint>;
  last: Endpoint;
  /** Set when a replica refused a write (25006): the next attempt goes to the primary at once. */
  rerouted?: boolean;
  /** A read that must see a write: after a failure only the primary is sure to qualify. */
  consistent?: boolean;
}

export class ResilientPool extends SafeEmitter {
  private readonly resolved: ResolvedOptions;
  private readonly logger: LoggerLike;
  private readonly router: Router;
  private readonly endpoints: readonly Endpoint[];
  private readonly readCache: ReadThroughCache | undefined;
  private readonly health: HealthMonitor | undefined;
  private readonly sessions = new Sessions();
  /** With `primary: [candidates]`: which candidate is writable, found and found again. */
  private readonly candidates: CandidatePrimary | undefined;
  private readonly budget: RetryBudget;
  private readonly housekeeping: ReturnType<typeof setInterval>;
  private readonly autoRouting: boolean;
  /** Calls in the retry path (they hold no permit while they sleep). */
  private retrying = 0;
  private retriesSettled: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private readonly poolErrorListeners = new Map<Endpoint, (err: Error) => void>();

  /** True once `end()` was called (pg.Pool's name). */
  ending = false;
  /** True once `end()` finished (pg.Pool's name). */
  ended = false;

  constructor(options: ResilientPoolOptions) {
    const resolved = resolveOptions(options);
    const logger = createLogger(resolved.logger);
    super(logger);
    this.resolved = resolved;
    this.logger = logger;
    const hooks = {
      breaker: (p: ResilientPoolEvents['breaker']) => {
        if (p.state === 'open') {
          const endpoint = this.endpoints?.find((e) => e.name === p.endpoint);
          if (endpoint !== undefined) this.health?.onBreakerOpen(endpoint);
          // The primary's circuit opened: with candidates, find out whether another took over.
          if (endpoint?.role === 'primary') this.rediscoverPrimary();
        }
        this.emitSafely('breaker', p);
      },
      reject: (p: ResilientPoolEvents['reject']) => this.emitSafely('reject', p),
      leak: (p: ResilientPoolEvents['leak']) => this.emitSafely('leak', p),
      demoted: () => this.rediscoverPrimary(),
    };
    if (resolved.primaryCandidates !== undefined) {
      this.candidates = new CandidatePrimary(
        resolved.primaryCandidates.map((c) => ({ name: c.name, pool: c.pool })),
        resolved.health.timeoutMs,
        (from, to) => {
          logger.warn({ from, to }, `resilient-pool: writes moved from "${from}" to "${to}"`);
          this.emitSafely('failover', { from, to });
        },
      );
      resolved.primary.pool = this.candidates;
    }
    const primary = new Endpoint(resolved.primary, 'primary', resolved, hooks, logger);
    const replicas = resolved.replicas.map(
      (r) => new Endpoint(r, 'replica', resolved, hooks, logger),
    );
    this.router = new Router(
      primary,
      replicas,
      createBalancer<Endpoint>(resolved.routing.balancer),
      resolved.routing.fallbackToPrimary,
    );
    this.endpoints = this.router.all;
    this.autoRouting = resolved.routing.queryRouting === 'auto';
    this.budget = new RetryBudget(resolved.retry.budgetPercent, resolved.retry.budgetMinRetries);
    // One timer for the whole pool, slides the retry budget's 10 s window once a second.
    this.housekeeping = setInterval(() => this.budget.rotate(), 1_000);
    this.housekeeping.unref();
    for (const endpoint of this.endpoints) this.listenForPoolErrors(endpoint);
    // The first candidate is assumed until the candidates have answered; writes wait for that.
    this.rediscoverPrimary();
    // Probing is for choosing among replicas: a pool with none has nothing to eject.
    if (resolved.health.enabled && replicas.length > 0) {
      this.health = new HealthMonitor(
        this.endpoints,
        { ...resolved.health, ...resolved.lag },
        {
          eject: (p) => this.emitSafely('eject', p),
          readmit: (p) => this.emitSafely('readmit', p),
        },
        logger,
      );
      this.health.start();
    }
    this.readCache =
      resolved.cache === undefined
        ? undefined
        : new ReadThroughCache(resolved.cache, {
            logger,
            onBreaker: (state, previous) => this.emitSafely('cacheBreaker', { state, previous }),
          });
  }

  /** The read-through cache (`invalidate(tags)`, `stats()`), when the pool has one. */
  get cache(): CacheHandle | undefined {
    return this.readCache;
  }

  // ---- pg.Pool-compatible surface -------------------------------------------------------------

  /**
   * pg.Pool's `query`, in all its call shapes. Goes to the primary, or with
   * `routing.queryRouting: 'auto'` to a replica when the statement is certainly a plain read.
   */
  query<R extends Row = Row>(
    text: string | QueryConfigLike,
    values?: Values,
  ): Promise<QueryResultLike<R>>;
  query<R extends Row = Row>(text: string | QueryConfigLike, callback: Callback<R>): void;
  query<R extends Row = Row>(
    text: string | QueryConfigLike,
    values: Values | undefined,
    callback: Callback<R>,
  ): void;
  query<R extends Row = Row>(
    text: string | QueryConfigLike,
    valuesOrCallback?: Values | Callback<R>,
    callback?: Callback<R>,
  ): Promise<QueryResultLike<R>> | undefined {
    let values: Values | undefined;
    if (typeof valuesOrCallback === 'function') callback = valuesOrCallback;
    else values = valuesOrCallback;
    const sql = typeof text === 'string' ? text : text?.text;
    const role =
      this.autoRouting && typeof sql === 'string' && classifySql(sql) === 'read' ? READ : WRITE;
    const result = this.run(role, text, values, undefined, role === READ) as Promise<
      QueryResultLike<R>
    >;
    if (callback === undefined) return result;
    const cb = callback;
    result.then(
      (r) => cb(null, r),
      (err: Error) => cb(err),
    );
    return undefined;
  }

  /** Runs a read on a replica (or the primary as fallback); retried elsewhere on failure. */
  read<R extends Row = Row>(
    text: string | QueryConfigLike,
    values?: Values,
    options?: ReadOptions,
  ): Promise<QueryResultLike<R>> {
    const invalid =
      options === undefined ? undefined : callOptionsError('read', options, READ_KEYS);
    if (invalid) return Promise.reject(invalid);
    // A read that must see a write: the caller's token, or its session's latest.
    const token = options?.after ?? this.sessions.current()?.token;
    if (token !== undefined && this.router.replicas.length > 0 && options?.cache === undefined) {
      const position = tokenPosition(token);
      if (position !== undefined) {
        return this.readAfter(text, values, options, position) as Promise<QueryResultLike<R>>;
      }
    }
    const cache = options?.cache;
    // Only what the classifier is sure is a plain read is cached: a read() whose statement
    // writes (a function with side effects aside, which no classifier sees) bypasses the cache.
    const sql = typeof text === 'string' ? text : text?.text;
    if (
      cache !== undefined &&
      cache !== false &&
      typeof sql === 'string' &&
      classifySql(sql) === 'read'
    ) {
      if (this.readCache === undefined) {
        return Promise.reject(
          new ConfigError(["read(): option 'cache' needs the pool's `cache` option"]),
        );
      }
      if (this.ending) return Promise.reject(new PoolClosedError());
      const readCache = this.readCache;
      // One deadline for the whole cached read: the wait on another caller's fill, the store
      // and the query share it.
      return withDeadline(options?.timeout, options?.signal, (signal) =>
        readCache.read(
          text,
          values,
          cache,
          () =>
            this.run(
              READ,
              text,
              values,
              signal,
              options?.idempotent ?? true,
            ) as Promise<QueryResultLike>,
          signal,
        ),
      ) as Promise<QueryResultLike<R>>;
    }
    return this.runRead(text, values, options) as Promise<QueryResultLike<R>>;
  }

  /** A read routed to an endpoint that has replayed up to `position` (the primary at worst). */
  private readAfter(
    text: string | QueryConfigLike,
    values: Values | undefined,
    options: ReadOptions | undefined,
    position: bigint,
  ): Promise<QueryResultLike> {
    return withDeadline(options?.timeout, options?.signal, async (signal) => {
      const endpoint = await endpointAtLeast(
        this.router,
        position,
        this.resolved.routing.consistencyWaitMs,
        signal,
      );
      return this.run(
        READ,
        text,
        values,
        signal,
        options?.idempotent ?? true,
        undefined,
        endpoint,
      ) as Promise<QueryResultLike>;
    });
  }

  private runRead(
    text: string | QueryConfigLike,
    values: Values | undefined,
    options: ReadOptions | undefined,
  ): Promise<QueryResultLike> {
    return this.run(
      READ,
      text,
      values,
      options?.signal,
      options?.idempotent ?? true,
      options?.timeout,
    ) as Promise<QueryResultLike>;
  }

  /** Runs a statement on the primary; re-sent only if nothing was sent or `idempotent` is set. */
  write<R extends Row = Row>(
    text: string | QueryConfigLike,
    values?: Values,
    options?: WriteOptions,
  ): Promise<QueryResultLike<R>> {
    const invalid =
      options === undefined ? undefined : callOptionsError('write', options, WRITE_KEYS);
    if (invalid) return Promise.reject(invalid);
    const capture = options?.captureToken ?? this.sessions.current() !== undefined;
    const written = (
      capture
        ? this.writeCapturingToken(text, values, options)
        : this.run(
            WRITE,
            text,
            values,
            options?.signal,
            options?.idempotent ?? false,
            options?.timeout,
          )
    ) as Promise<QueryResultLike<R>>;
    const tags = options?.invalidates;
    const cache = this.readCache;
    if (cache === undefined || tags === undefined || tags.length === 0) return written;
    // Invalidate after the write, and also after a failure that may have applied it.
    return written.then(
      async (result) => {
        await cache.invalidate(tags);
        return result;
      },
      async (err: unknown) => {
        // Unless the write certainly did not apply (refused before sending, or answered with
        // an error), it may have: invalidate. An abort or a timeout can land after the commit.
        const c = classify(err);
        const notApplied =
          wasNotSent(err) || c === 'permanent' || c === 'conflict' || c === 'read-only';
        if (!notApplied) await cache.invalidate(tags);
        throw err;
      },
    );
  }

  /**
   * A write followed, on the same connection, by one cheap query for the primary's WAL position:
   * the result's consistency token (`consistencyToken(result)`), also recorded in the session.
   * Reading the position can fail without failing the write.
   */
  private async writeCapturingToken(
    text: string | QueryConfigLike,
    values: Values | undefined,
    options: WriteOptions | undefined,
  ): Promise<QueryResultLike> {
    const client = await this.connect({
      role: 'write',
      ...(options?.signal ? { signal: options.signal } : {}),
      ...(options?.timeout ? { timeout: options.timeout } : {}),
    });
    let result: QueryResultLike;
    try {
      result = (await client.query(text, values)) as QueryResultLike;
    } catch (err) {
      client.release(isHealthFailure(err) ? (err as Error) : undefined);
      throw err;
    }
    try {
      const position = (await client.query(CAPTURE_SQL)) as QueryResultLike;
      const token = asToken((position.rows[0] as { lsn?: unknown } | undefined)?.lsn);
      if (token !== undefined) {
        attachToken(result, token);
        this.sessions.record(token);
      }
      client.release();
    } catch (err) {
      client.release(err as Error);
    }
    return result;
  }

  /**
   * Checks out a client pinned to one endpoint (pg.PoolClient-compatible; call `release()`).
   * Also accepts pg's callback form `connect((err, client, release) => ...)`.
   */
  connect(options?: ConnectOptions): Promise<PgClientLike>;
  connect(
    callback: (err: Error | undefined, client?: PgClientLike, done?: () => void) => void,
  ): void;
  connect(
    optionsOrCallback?:
      | ConnectOptions
      | ((err: Error | undefined, client?: PgClientLike, done?: () => void) => void),
  ): Promise<PgClientLike> | undefined {
    if (typeof optionsOrCallback === 'function') {
      const cb = optionsOrCallback;
      this.connect().then(
        (client) => cb(undefined, client, () => client.release()),
        (err: Error) => cb(err),
      );
      return undefined;
    }
    const invalid = callOptionsError('connect', optionsOrCallback, CONNECT_KEYS);
    if (invalid) return Promise.reject(invalid);
    const role = optionsOrCallback?.role === 'read' ? READ : WRITE;
    return this.run(
      role,
      null,
      undefined,
      optionsOrCallback?.signal,
      true,
      optionsOrCallback?.timeout,
    ) as Promise<PgClientLike>;
  }

  /**
   * Runs `fn` inside BEGIN/COMMIT on the primary (or a replica with `role: 'read'`), rolling back
   * if it throws. On a serialization failure, deadlock or lock timeout the whole of `fn` is re-run
   * (`info.attempt` says which try it is); a lost connection during COMMIT rejects with
   * TransactionOutcomeUnknownError and is never re-run. The client is never returned to the pool
   * in a failed transaction.
   *
   * @example
   * await db.transaction(async (tx, { attempt }) => {
   *   const { rows } = await tx.query('SELECT balance FROM accounts WHERE id = $1', [1]);
   *   await tx.query('UPDATE accounts SET balance = $1 WHERE id = $2', [rows[0].balance - 10, 1]);
   * }, { isolation: 'serializable', retries: 5 });
   */
  transaction<T>(
    fn: (tx: Transaction, info: TransactionAttempt) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const invalid = callOptionsError('transaction', options, TRANSACTION_KEYS);
    if (invalid) return Promise.reject(invalid);
    if (this.ending) return Promise.reject(new PoolClosedError());
    return runTransaction(this, fn, options, {
      backoff: this.resolved.retry,
      onRetry: (attempt, delayMs, error) =>
        this.emitSafely('retry', {
          endpoint: options.role === 'read' ? 'replica' : this.router.primary.name,
          attempt,
          delayMs,
          error,
        }),
      onToken:
        options.onToken !== undefined || this.sessions.current() !== undefined
          ? (token) => {
              this.sessions.record(token);
              options.onToken?.(token);
            }
          : undefined,
    });
  }

  /**
   * Runs `fn` as a session: reads made in it see the writes made in it (read-your-writes). Each
   * write() and committed transaction() records its consistency token, and each read() goes
   * only to a replica that has replayed up to the latest one, or to the primary (after waiting
   * up to `routing.consistencyWaitMs`). Outside a session nothing changes.
   *
   * @example
   * app.post('/profile', (req, res) => db.session(async () => {
   *   await db.write('UPDATE users SET name = $1 WHERE id = $2', [req.body.name, req.user.id]);
   *   const { rows } = await db.read('SELECT * FROM users WHERE id = $1', [req.user.id]);
   *   res.json(rows[0]); // never the old name
   * }));
   */
  session<T>(fn: () => Promise<T>): Promise<T> {
    return this.sessions.run(fn);
  }

  /**
   * Asks the primary candidates which is writable and moves writes there; closes the primary's
   * circuit when a writable one answered (it may be a different server now). Writes that arrive
   * meanwhile wait for the answer (see run()). Without candidates, nothing to do.
   */
  private rediscoverPrimary(): void {
    const candidates = this.candidates;
    if (candidates === undefined || candidates.isDiscovering || this.ending) return;
    candidates.discover().then(
      () => {
        const breaker = this.router.primary.breaker;
        if (breaker.state !== 'closed') breaker.reset();
      },
      (err: unknown) =>
        this.logger.warn(
          { err: describeError(err) },
          'resilient-pool: no writable primary among the candidates (yet)',
        ),
    );
  }

  /** A plain snapshot of every endpoint's state and counters. */
  stats(): PoolStats {
    const stats = snapshotStats(this.endpoints);
    if (this.readCache !== undefined) stats.cache = this.readCache.stats();
    return stats;
  }

  /**
   * The primary pool's options (pg.Pool exposes its own). Query builders read it: Kysely's
   * PostgresDialect requires it. It is the caller's own object, never logged by this library.
   */
  get options(): object {
    return this.router.primary.pool.options ?? {};
  }

  /** Clients open in the wrapped pools (pg.Pool's `totalCount`, summed). */
  get totalCount(): number {
    return this.endpoints.reduce((sum, e) => sum + e.pool.totalCount, 0);
  }

  /** Idle clients in the wrapped pools (pg.Pool's `idleCount`, summed). */
  get idleCount(): number {
    return this.endpoints.reduce((sum, e) => sum + e.pool.idleCount, 0);
  }

  /** Calls waiting for a connection: in the gates and inside the wrapped pools. */
  get waitingCount(): number {
    return this.endpoints.reduce((sum, e) => sum + e.gate.waiting + e.pool.waitingCount, 0);
  }

  /**
   * Refuses new calls with PoolClosedError, waits for in-flight calls up to `timeout`, then ends
   * the wrapped pools (unless `ownsPools: false`) and clears every timer so the process can exit.
   */
  end(options?: EndOptions): Promise<void>;
  /** pg.Pool's callback form. */
  end(callback: (err?: Error) => void): void;
  end(optionsOrCallback?: EndOptions | ((err?: Error) => void)): Promise<void> | undefined {
    const options = typeof optionsOrCallback === 'function' ? {} : (optionsOrCallback ?? {});
    const invalid = callOptionsError('end', options, END_KEYS);
    if (invalid) {
      if (typeof optionsOrCallback === 'function') optionsOrCallback(invalid);
      return typeof optionsOrCallback === 'function' ? undefined : Promise.reject(invalid);
    }
    this.closing ??= this.shutdown(options.timeout ?? 10_000);
    if (typeof optionsOrCallback !== 'function') return this.closing;
    const callback = optionsOrCallback;
    this.closing.then(
      () => callback(),
      (err: Error) => callback(err),
    );
    return undefined;
  }

  override on<E extends EventName>(
    event: E,
    listener: (payload: ResilientPoolEvents[E]) => void,
  ): this {
    return super.on(event, listener);
  }

  override once<E extends EventName>(
    event: E,
    listener: (payload: ResilientPoolEvents[E]) => void,
  ): this {
    return super.once(event, listener);
  }

  override off<E extends EventName>(
    event: E,
    listener: (payload: ResilientPoolEvents[E]) => void,
  ): this {
    return super.off(event, listener);
  }

  // ---- the call path ---------------------------------------------------------------------------

  /**
   * One call: route and run; only if that fails is the retry path entered. No async function
   * here: the success path costs the endpoint's one promise plus, when retries are on, one
   * `.catch`.
   */
  private run(
    role: Role,
    text: QueryText | null,
    values: Values | undefined,
    signal: AbortSignal | undefined,
    idempotent: boolean,
    timeout?: number,
    pinned?: Endpoint,
  ): Promise<QueryResultLike | PgClientLike> {
    if (timeout !== undefined) {
      return withDeadline(timeout, signal, (deadline) =>
        this.run(role, text, values, deadline, idempotent),
      );
    }
    if (this.ending) return Promise.reject(new PoolClosedError());
    if (signal?.aborted) return Promise.reject(new AbortedError(undefined, signal.reason));
    if (this.candidates?.isDiscovering && (role === WRITE || pinned === this.router.primary)) {
      // The primary is being looked for: hold the call (nothing sent yet), then send it once.
      return this.candidates
        .settled()
        .then(() => this.run(role, text, values, signal, idempotent, undefined, pinned));
    }
    this.budget.recordCall();
    const endpoint = pinned ?? (role === READ ? this.router.forRead(null) : this.router.primary);
    if (endpoint === undefined) return Promise.reject(this.noHealthyEndpoint(role, undefined));
    const admitted = endpoint.admit();
    // A refusal (closed, open circuit, full queue) has nowhere better to go: the router already
    // chose the best endpoint. Reject without entering the retry path.
    if (admitted instanceof Error) return Promise.reject(admitted);
    const attempt =
      text === null
        ? endpoint.checkoutAdmitted(admitted, signal)
        : endpoint.queryAdmitted(admitted, text, values, signal);
    if (this.resolved.retry.retries === 0) return attempt;
    return attempt.catch((err: unknown) =>
      this.retryAfterFailure(err, {
        role,
        text,
        values,
        signal,
        idempotent,
        tried: new Set([endpoint]),
        last: endpoint,
        consistent: pinned !== undefined && role === READ,
      }),
    );
  }

  /**
   * The retry path, driven by p-retry. The first failure already happened, so p-retry's first
   * attempt re-throws it and p-retry decides from there; our `shouldRetry` applies the re-send
   * rule, the budget and the full-jitter sleep.
   */
  private retryAfterFailure(
    first: unknown,
    call: FailedCall,
  ): Promise<QueryResultLike | PgClientLike> {
    const { retry } = this.resolved;
    if (!this.mayRetry(first, call)) return Promise.reject(first);
    let lastError: unknown = first;
    this.retrying++;
    return pRetry(
      (attempt: number) =>
        attempt === 1 ? Promise.reject(first) : this.attemptAgain(call, lastError),
      {
        retries: retry.retries,
        // Delays are ours (full jitter, abortable): p-retry's own would be 0.
        minTimeout: 0,
        maxTimeout: 0,
        factor: 1,
        randomize: false,
        shouldRetry: async ({ error, attemptNumber }) => {
          lastError = error;
          if (!this.mayRetry(error, call)) return false;
          if (!this.budget.tryWithdraw()) {
            this.logger.warn(
              { endpoint: call.last.name, err: describeError(error) },
              'resilient-pool: retry budget exhausted, not retrying',
            );
            return false;
          }
          // Moving to another endpoint needs no pause; trying the same one again does.
          const moving =
            call.rerouted || (call.role === READ && this.router.hasReadAlternative(call.tried));
          call.rerouted = false;
          const delayMs = moving ? 0 : backoffDelay(attemptNumber, retry);
          call.last.counters.retries++;
          this.emitSafely('retry', {
            endpoint: call.last.name,
            attempt: attemptNumber + 1,
            delayMs,
            error,
          });
          await sleep(delayMs, call.signal);
          if (this.ending) throw new PoolClosedError();
          return true;
        },
      },
    ).finally(() => {
      if (--this.retrying === 0) this.retriesSettled?.();
    });
  }

  private mayRetry(err: unknown, call: FailedCall): boolean {
    const errorClass = classify(err);
    if (errorClass === 'read-only') {
      // A replica refused a write (25006): the statement belongs on the primary. From the
      // primary itself it means a demoted primary, which retrying here cannot fix.
      if (call.last.role === 'primary') return false;
      // The statement is now known to write: from here on it is re-sent only if nothing was sent.
      call.role = WRITE;
      call.idempotent = false;
      call.rerouted = true;
      return true;
    }
    if (errorClass === 'unavailable') {
      // Refused before sending (open circuit, full queue): only another endpoint can help, and
      // waiting for the same one would turn a fast refusal into a slow one.
      return call.role === READ && this.router.hasReadAlternative(call.tried);
    }
    if (call.role === WRITE && !this.router.primary.breaker.admits) {
      // The failure just opened the primary's circuit: another try would only be refused, and
      // the caller learns more from the failure itself than from CircuitOpenError.
      return false;
    }
    return mayRetryStatement(err, call.idempotent);
  }

  private attemptAgain(
    call: FailedCall,
    lastError: unknown,
  ): Promise<QueryResultLike | PgClientLike> {
    const endpoint =
      call.role === READ && !call.consistent
        ? this.router.forRead(call.tried)
        : this.router.primary;
    if (endpoint === undefined) return Promise.reject(this.noHealthyEndpoint(call.role, lastError));
    call.tried.add(endpoint);
    call.last = endpoint;
    return call.text === null
      ? endpoint.checkout(call.signal)
      : endpoint.query(call.text, call.values, call.signal);
  }

  private noHealthyEndpoint(role: Role, cause: unknown): NoHealthyEndpointError {
    return new NoHealthyEndpointError(role === READ ? 'read' : 'write', cause);
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** Resolves when no call holds or waits for a permit and none is between retries. */
  private async drain(): Promise<void> {
    for (;;) {
      await Promise.all(this.endpoints.map((e) => e.drained()));
      if (this.retrying === 0) return;
      await new Promise<void>((resolve) => {
        this.retriesSettled = resolve;
      });
      this.retriesSettled = undefined;
    }
  }

  private listenForPoolErrors(endpoint: Endpoint): void {
    // An idle client's error (server restart, network drop) is emitted on the pool; with no
    // listener Node would crash the process (node-postgres #2439, #2499).
    const listener = (err: Error) => {
      this.logger.warn(
        { endpoint: endpoint.name, err: describeError(err) },
        'resilient-pool: idle client error (the client was removed from the pool)',
      );
      if (!this.ended && this.listenerCount('error') > 0) {
        const tagged = err as Error & { endpoint?: string };
        tagged.endpoint = endpoint.name;
        this.emitSafely('error', tagged);
      }
    };
    this.poolErrorListeners.set(endpoint, listener);
    endpoint.pool.on('error', listener);
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    const startedAt = Date.now();
    this.ending = true;
    clearInterval(this.housekeeping);
    this.health?.stop();
    for (const endpoint of this.endpoints) endpoint.close();
    // Calls already admitted or queued were accepted before end(): let them finish.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([this.drain(), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.logger.warn(
        { timeoutMs, inFlight: this.stats().endpoints.map((e) => [e.name, e.inFlight, e.queued]) },
        'resilient-pool: end() timed out waiting for in-flight calls',
      );
    }
    // Entry writes started by reads that already returned: each store call is bounded by the
    // cache's own timeout. The application's Redis client is left open.
    if (this.readCache !== undefined) {
      await this.readCache.whenIdle();
      this.readCache.close();
    }
    for (const endpoint of this.endpoints) endpoint.shutdown();
    if (this.resolved.ownsPools) {
      // pg's end() waits for every checked-out client; a client leaked by the application would
      // hold it forever, so it is given what is left of the timeout.
      const remaining = Math.max(1_000, timeoutMs - (Date.now() - startedAt));
      const results = await Promise.allSettled(
        this.endpoints.map((e) => withTimeout(e.pool.end(), remaining, e.name)),
      );
      for (const [i, r] of results.entries()) {
        if (r.status === 'rejected') {
          this.logger.warn(
            { endpoint: this.endpoints[i]?.name, err: describeError(r.reason) },
            'resilient-pool: ending a wrapped pool failed',
          );
        }
      }
    } else {
      for (const [endpoint, listener] of this.poolErrorListeners)
        endpoint.pool.off?.('error', listener);
    }
    this.ended = true;
  }
}
