/**
 * ResilientPool: composes endpoints, the router and the retry policy behind a surface that is
 * usable wherever a pg.Pool is (query in both call shapes, connect/release, end, the counts and
 * the 'error' event).
 */
import { setMaxListeners } from 'node:events';
import { type CacheHandle, cacheIdentity, ReadThroughCache } from '../cache/index.js';
import { Sessions } from '../consistency/session.js';
import { withDeadline } from '../deadline.js';
import { Endpoint } from '../endpoint/endpoint.js';
import { ConfigError, PoolClosedError } from '../errors.js';
import { HealthMonitor } from '../health/monitor.js';
import {
  CONNECT_KEYS,
  callOptionsError,
  END_KEYS,
  READ_KEYS,
  TRANSACTION_KEYS,
  WRITE_KEYS,
} from '../options/call.js';
import { DEFAULTS } from '../options/defaults.js';
import { resolveOptions } from '../options/pool.js';
import type { ResolvedOptions } from '../options/resolved.js';
import type { ResilientPoolOptions } from '../options/types.js';
import type { PgClientLike, QueryConfigLike, QueryResultLike } from '../pg-like.js';
import { RetryBudget } from '../retry/budget.js';
import { createBalancer } from '../routing/balancers/create-balancer.js';
import { SqlClassifier } from '../routing/classify-sql.js';
import { Router } from '../routing/router.js';
import { type EventName, type ResilientPoolEvents, SafeEmitter } from '../telemetry/events.js';
import { createLogger, type LoggerLike } from '../telemetry/logger.js';
import type { ConnectOptions, EndOptions, ReadOptions, WriteOptions } from './call-options.js';
import { CallPath, type CallRole } from './call-path.js';
import { Housekeeping } from './housekeeping.js';
import { PoolErrorForwarding } from './pool-errors.js';
import { PrimaryDiscovery } from './primary-discovery.js';
import { type Lifecycle, shutDown } from './shutdown.js';
import { Statements } from './statements.js';
import { type PoolStats, snapshotStats } from './stats.js';
import {
  runTransaction,
  type Transaction,
  type TransactionAttempt,
  type TransactionOptions,
} from './transaction.js';

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
  private readonly discovery: PrimaryDiscovery | undefined;
  private readonly callPath: CallPath;
  private readonly statements: Statements;
  /** Aborted with PoolClosedError when `end()` is called: every sleep and wait ends then. */
  private readonly lifetime = new AbortController();
  private readonly housekeeping: Housekeeping;
  private readonly poolErrors: PoolErrorForwarding;
  private readonly autoRouting: boolean;
  /** Read/write classification of statement texts, memoised per pool. */
  private readonly sql = new SqlClassifier();
  private lifecycle: Lifecycle = { state: 'open' };

  /** True once `end()` was called (pg.Pool's name). */
  get ending(): boolean {
    return this.lifecycle.state !== 'open';
  }

  /** True once `end()` finished (pg.Pool's name). */
  get ended(): boolean {
    return this.lifecycle.state === 'ended';
  }

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
      this.discovery = new PrimaryDiscovery(
        resolved.primaryCandidates,
        resolved.health.timeoutMs,
        logger,
        (from, to) => this.emitSafely('failover', { from, to }),
      );
      resolved.primary.pool = this.discovery.candidates;
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
    this.discovery?.attach(primary);
    this.autoRouting = resolved.routing.queryRouting === 'auto';
    const budget = new RetryBudget(resolved.retry.budgetPercent, resolved.retry.budgetMinRetries);
    this.housekeeping = new Housekeeping(budget, this.endpoints, resolved.breaker);
    this.callPath = new CallPath({
      router: this.router,
      retry: resolved.retry,
      budget,
      logger,
      candidates: this.discovery?.candidates,
      lifetime: this.lifetime.signal,
      onRetry: (p) => this.emitSafely('retry', p),
    });
    this.poolErrors = new PoolErrorForwarding(this.endpoints, logger, (err) => {
      if (!this.ended && this.listenerCount('error') > 0) this.emitSafely('error', err);
    });
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
    this.statements = new Statements({
      callPath: this.callPath,
      router: this.router,
      sessions: this.sessions,
      sql: this.sql,
      readCache: this.readCache,
      consistencyWaitMs: resolved.routing.consistencyWaitMs,
      lifetime: this.lifetime.signal,
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
    return this.statements.read(text, values, options) as Promise<QueryResultLike<R>>;
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
    return this.statements.write(text, values, options) as Promise<QueryResultLike<R>>;
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

  /** With candidates, asks them again which is writable (see primary-discovery.ts). */
  private rediscoverPrimary(): void {
    if (!this.ending) this.discovery?.rediscover();
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
    const closing = this.close(options.timeout ?? DEFAULTS.call.end.timeout);
    if (typeof optionsOrCallback !== 'function') return closing;
    const callback = optionsOrCallback;
    closing.then(
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

  /** Starts shutting down once; later calls share the first one's outcome. */
  private close(timeoutMs: number): Promise<void> {
    const { lifecycle } = this;
    if (lifecycle.state !== 'open') return lifecycle.done;
    const done = shutDown(
      {
        endpoints: this.endpoints,
        callPath: this.callPath,
        lifetime: this.lifetime,
        housekeeping: this.housekeeping,
        health: this.health,
        readCache: this.readCache,
        poolErrors: this.poolErrors,
        ownsPools: this.resolved.ownsPools,
        logger: this.logger,
      },
      timeoutMs,
    ).finally(() => {
      this.lifecycle = { state: 'ended', done };
    });
    this.lifecycle = { state: 'ending', done };
    return done;
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
