/**
 * ResilientPool: composes endpoints, the router and the retry policy behind a surface that is
 * usable wherever a pg.Pool is (query in both call shapes, connect/release, end, the counts and
 * the 'error' event).
 */
import { setMaxListeners } from 'node:events';
import {
  type CacheCallOptions,
  type CacheHandle,
  cacheIdentity,
  ReadThroughCache,
} from './cache/index.js';
import {
  CONNECT_KEYS,
  callOptionsError,
  END_KEYS,
  READ_KEYS,
  TRANSACTION_KEYS,
  WRITE_KEYS,
} from './call-options.js';
import { CallPath, type CallRole } from './call-path.js';
import { classify } from './classify.js';
import { endpointAtLeast } from './consistency/replica-at.js';
import { Sessions } from './consistency/session.js';
import { type ConsistencyToken, consistencyToken, tokenPosition } from './consistency/token.js';
import { raceAbort, withDeadline } from './deadline.js';
import { Endpoint, type Statement } from './endpoint/endpoint.js';
import { ConfigError, PoolClosedError } from './errors.js';
import { HealthMonitor } from './health/monitor.js';
import { type ResilientPoolOptions, type ResolvedOptions, resolveOptions } from './options.js';
import type { PgClientLike, QueryConfigLike, QueryResultLike } from './pg-like.js';
import { RetryBudget } from './retry/budget.js';
import { wasNotSent } from './retry/policy.js';
import { createBalancer } from './routing/balancers/create-balancer.js';
import { SqlClassifier } from './routing/classify-sql.js';
import { CandidatePrimary } from './routing/primary-candidates.js';
import { Router } from './routing/router.js';
import { describeError } from './telemetry/describe-error.js';
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
   * Lets the pool re-send the read after a connection failure even when it may have run on the
   * primary (the fallback). Without it a read is re-sent only when nothing was sent, or when it
   * ran on a hot standby, which cannot write: a read whose functions write is never run twice.
   * @default false
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
  private readonly callPath: CallPath;
  /** Aborted with PoolClosedError when `end()` is called: every sleep and wait ends then. */
  private readonly lifetime = new AbortController();
  private readonly housekeeping: ReturnType<typeof setInterval>;
  /** Advances the endpoints' generation so that statements running past slowCallMs count. */
  private readonly slowCallSweep: ReturnType<typeof setInterval> | undefined;
  private readonly autoRouting: boolean;
  /** Read/write classification of statement texts, memoised per pool. */
  private readonly sql = new SqlClassifier();
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
    // Every sleeping retry and waiting call listens here at once; hundreds is normal, not a leak.
    setMaxListeners(0, this.lifetime.signal);
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
      down: (p: ResilientPoolEvents['down']) => {
        // A frozen primary may have been replaced: with candidates, look for the writable one.
        if (p.role === 'primary') this.rediscoverPrimary();
        this.emitSafely('down', p);
      },
      up: (p: ResilientPoolEvents['up']) => this.emitSafely('up', p),
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
    this.callPath = new CallPath({
      router: this.router,
      retry: resolved.retry,
      budget: this.budget,
      logger,
      candidates: this.candidates,
      lifetime: this.lifetime.signal,
      onRetry: (p) => this.emitSafely('retry', p),
    });
    const { slowCallMs } = resolved.breaker;
    if (resolved.breaker.enabled && slowCallMs > 0) {
      this.slowCallSweep = setInterval(
        () => {
          for (const endpoint of this.endpoints) endpoint.sweep();
        },
        Math.max(1, Math.floor(slowCallMs / 2)),
      );
      this.slowCallSweep.unref();
    }
    for (const endpoint of this.endpoints) this.listenForPoolErrors(endpoint);
    // The first candidate is assumed until the candidates have answered; writes wait for that.
    this.rediscoverPrimary();
    // The primary is probed too, also without replicas: a frozen server must be noticed.
    if (resolved.health.enabled) {
      this.health = new HealthMonitor(
        this.endpoints,
        { ...resolved.health, ...resolved.lag },
        {
          eject: (p) => this.emitSafely('eject', p),
          readmit: (p) => this.emitSafely('readmit', p),
          // A primary that keeps failing its probes may have been replaced by a promotion that
          // happened after the last discovery: ask the candidates again, each round.
          probeFailed: (endpoint) => {
            if (endpoint.role === 'primary') this.rediscoverPrimary();
          },
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
            // Every pool a read can reach: the candidates themselves (not the CandidatePrimary
            // that forwards to them), or the primary, and the replicas.
            identity: cacheIdentity([
              ...(resolved.primaryCandidates ?? [resolved.primary]).map((e) => e.pool),
              ...resolved.replicas.map((e) => e.pool),
            ]),
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
    if (typeof text === 'function') {
      // pg.Pool's own guard: a lone callback is called with this error, never run as SQL.
      const cb = text as Callback<R>;
      const err = new Error(
        'Passing a function as the first parameter to pool.query is not supported',
      );
      setImmediate(() => callBack(cb, err));
      return undefined;
    }
    let values: Values | undefined;
    if (typeof valuesOrCallback === 'function') callback = valuesOrCallback;
    else values = valuesOrCallback;
    const sql = typeof text === 'string' ? text : text?.text;
    const role: CallRole =
      this.autoRouting && typeof sql === 'string' && this.sql.classify(sql) === 'read'
        ? 'read'
        : 'write';
    const result = this.callPath.statement({
      role,
      statement: { text, values, captureToken: false },
      signal: undefined,
      idempotent: false,
      pinned: undefined,
    }) as Promise<QueryResultLike<R>>;
    if (callback === undefined) return result;
    const cb = callback;
    // As in pg, an exception thrown by the callback is the application's: it surfaces as an
    // uncaught exception, never as a second callback or a swallowed error.
    result.then(
      (r) => callBack(cb, null, r),
      (err: Error) => callBack(cb, err),
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
    const statement: Statement = { text, values, captureToken: false };
    const idempotent = options?.idempotent ?? false;
    // A read that must see a write: the caller's token, or its session's latest.
    const token = options?.after ?? this.sessions.current()?.token;
    if (token !== undefined && this.router.replicas.length > 0 && options?.cache === undefined) {
      const position = tokenPosition(token);
      if (position !== undefined) {
        return this.readAfter(statement, idempotent, options, position) as Promise<
          QueryResultLike<R>
        >;
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
      this.sql.classify(sql) === 'read'
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
            this.callPath.statement({
              role: 'read',
              statement,
              signal,
              idempotent,
              pinned: undefined,
            }),
          signal,
        ),
      ) as Promise<QueryResultLike<R>>;
    }
    return withDeadline(options?.timeout, options?.signal, (signal) =>
      this.callPath.statement({ role: 'read', statement, signal, idempotent, pinned: undefined }),
    ) as Promise<QueryResultLike<R>>;
  }

  /** A read routed to an endpoint that has replayed up to `position` (the primary at worst). */
  private readAfter(
    statement: Statement,
    idempotent: boolean,
    options: ReadOptions | undefined,
    position: bigint,
  ): Promise<QueryResultLike> {
    return withDeadline(options?.timeout, options?.signal, async (signal) => {
      const choosing = endpointAtLeast(
        this.router,
        position,
        this.resolved.routing.consistencyWaitMs,
        signal,
      );
      const lifetime = this.lifetime.signal;
      const pinned = await raceAbort(choosing, lifetime, () => lifetime.reason);
      return this.callPath.statement({ role: 'read', statement, signal, idempotent, pinned });
    });
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
    const session = this.sessions.current();
    const captureToken = options?.captureToken ?? session !== undefined;
    let written = withDeadline(options?.timeout, options?.signal, (signal) =>
      this.callPath.statement({
        role: 'write',
        statement: { text, values, captureToken },
        signal,
        idempotent: options?.idempotent ?? false,
        pinned: undefined,
      }),
    );
    if (captureToken && session !== undefined) {
      written = written.then((result) => {
        const token = consistencyToken(result);
        if (token !== undefined) this.sessions.record(token);
        return result;
      });
    }
    const tags = options?.invalidates;
    const cache = this.readCache;
    if (cache === undefined || tags === undefined || tags.length === 0) {
      return written as Promise<QueryResultLike<R>>;
    }
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
    ) as Promise<QueryResultLike<R>>;
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
        (client) => callBack(cb, undefined, client, () => client.release()),
        (err: Error) => callBack(cb, err),
      );
      return undefined;
    }
    const invalid = callOptionsError('connect', optionsOrCallback, CONNECT_KEYS);
    if (invalid) return Promise.reject(invalid);
    const role: CallRole = optionsOrCallback?.role === 'read' ? 'read' : 'write';
    return withDeadline(optionsOrCallback?.timeout, optionsOrCallback?.signal, (signal) =>
      this.callPath.checkout(role, signal),
    );
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
    const invalid =
      typeof fn === 'function'
        ? callOptionsError('transaction', options, TRANSACTION_KEYS)
        : new ConfigError([`transaction(): fn must be a function, got ${typeof fn}`]);
    if (invalid) return Promise.reject(invalid);
    if (this.ending) return Promise.reject(new PoolClosedError());
    return runTransaction(this, fn, options, {
      backoff: this.resolved.retry,
      lifetime: this.lifetime.signal,
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
        // A writable candidate answered: the endpoint takes calls again (it may point at a
        // different server now).
        const primary = this.router.primary;
        primary.markUp();
        if (primary.breaker.state !== 'closed') primary.breaker.reset();
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
      () => callBack(callback),
      (err: Error) => callBack(callback, err),
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

  // ---- lifecycle -------------------------------------------------------------------------------

  /** Resolves when no call holds or waits for a permit and none is between retries. */
  private async drain(): Promise<void> {
    await this.callPath.idle();
    await Promise.all(this.endpoints.map((e) => e.drained()));
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
    // Sleeps and waits end now (a retry after them would be refused anyway): nothing of theirs
    // keeps the process alive past end().
    this.lifetime.abort(new PoolClosedError());
    clearInterval(this.housekeeping);
    clearInterval(this.slowCallSweep);
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
        'resilient-pool: end() timed out waiting for in-flight calls; ending them',
      );
      // Out of time: what is still running is ended (connections destroyed), so that nothing
      // outlives end(). A statement that may have written rejects with OutcomeUnknownError.
      for (const endpoint of this.endpoints) endpoint.endEverything(() => new PoolClosedError());
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

/** Calls a user's callback; what it throws surfaces as an uncaught exception, as in pg. */
function callBack<A extends unknown[]>(cb: (...args: A) => void, ...args: A): void {
  try {
    cb(...args);
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}
