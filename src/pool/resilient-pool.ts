/**
 * ResilientPool: composes endpoints, the router and the retry policy behind a surface that is
 * usable wherever a pg.Pool is, at run time and in the type system: query in all its call shapes,
 * connect/release, end, the counts, options, and pg-pool's events ('connect', 'acquire',
 * 'release', 'remove', 'error'), forwarded from every wrapped pool.
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
import { sweepIntervalMs } from '../options/outlier.js';
import { resolveOptions } from '../options/pool.js';
import type { ResolvedOptions } from '../options/resolved.js';
import type { EndpointConfig, ResilientPoolOptions } from '../options/types.js';
import type {
  ClientOf,
  PgPoolLike,
  PgQueryResult,
  QueryArrayConfigLike,
  QueryConfigLike,
  QueryResultLike,
  SubmittableLike,
} from '../pg-like.js';
import { RetryBudget } from '../retry/budget.js';
import { createBalancer } from '../routing/balancers/create-balancer.js';
import { SqlClassifier } from '../routing/classify-sql.js';
import { Hedging } from '../routing/hedge.js';
import { OutlierDetector } from '../routing/outlier-ejection.js';
import { Router } from '../routing/router.js';
import { SlowStart } from '../routing/slow-start.js';
import { createTelemetry, type Telemetry } from '../telemetry/create-telemetry.js';
import { isDiagnosticsEvent } from '../telemetry/diagnostics.js';
import { endpointAttributes } from '../telemetry/endpoint-attributes.js';
import {
  type EventName,
  type PoolEventListener,
  type PoolEventName,
  type ResilientPoolEvents,
  SafeEmitter,
} from '../telemetry/events.js';
import { createLogger, type LoggerLike } from '../telemetry/logger.js';
import type { ConnectOptions, EndOptions, ReadOptions, WriteOptions } from './call-options.js';
import { CallPath, type CallRole } from './call-path.js';
import { Consolidator } from './consolidation.js';
import { FailoverBuffering } from './failover-buffering.js';
import { Housekeeping } from './housekeeping.js';
import { PoolEventForwarding } from './pool-events.js';
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
type Callback<R> = (err: Error | null, result?: PgQueryResult<R>) => void;
type Row = Record<string, unknown>;
/** pg's `done` of `connect(callback)`: `client.release(err)`. */
type Done = (release?: Error | boolean) => void;
type ConnectCallback<Client> = (
  err: Error | undefined,
  client: Client | undefined,
  done: Done,
) => void;

/**
 * The pools of the options, from which `new ResilientPool(...)` infers its type parameter: a
 * ResilientPool over pg.Pools is a `ResilientPool<pg.Pool>`, whose `connect()` gives
 * `pg.PoolClient`s and which is assignable to `pg.Pool`.
 */
interface WrappedPools<Pool> {
  primary: Pool | EndpointOf<Pool> | ReadonlyArray<Pool | EndpointOf<Pool>>;
  replicas?: ReadonlyArray<Pool | EndpointOf<Pool>>;
}
type EndpointOf<Pool> = Omit<EndpointConfig, 'pool'> & { pool: Pool };
/** A listener as EventEmitter takes it. */
type AnyListener = Parameters<SafeEmitter['on']>[1];

/**
 * The resilient pool. `Pool` is the type of the wrapped pools (inferred from the options):
 * `connect()` and the pool events give its clients, `options` is its options.
 */
export class ResilientPool<Pool extends PgPoolLike = PgPoolLike> extends SafeEmitter {
  static {
    // Query builders tell a pool from a client by the class name: Drizzle's node-postgres
    // driver runs a transaction on a checked-out client only for a client whose constructor's
    // name includes "Pool", and otherwise sends BEGIN, the statements and COMMIT through
    // query(), each on whichever connection is free. A minifier renames the class; this name
    // survives it.
    Object.defineProperty(ResilientPool, 'name', { value: 'ResilientPool', configurable: true });
  }

  private readonly resolved: ResolvedOptions;
  private readonly logger: LoggerLike;
  private readonly router: Router;
  private readonly endpoints: readonly Endpoint[];
  private readonly readCache: ReadThroughCache | undefined;
  private readonly health: HealthMonitor | undefined;
  private readonly sessions = new Sessions();
  /** With `primary: [candidates]`: which candidate is writable, found and found again. */
  private readonly discovery: PrimaryDiscovery | undefined;
  /** Failover buffering of calls bound for the primary; undefined when `failover.bufferMs` is 0. */
  private readonly failover: FailoverBuffering | undefined;
  private readonly callPath: CallPath;
  private readonly statements: Statements;
  /** Identical plain reads in flight share one execution (query consolidation). */
  private readonly consolidator: Consolidator;
  /** Hedged reads; undefined when the `hedge` option is off (the default). */
  private readonly hedging: Hedging | undefined;
  /** Aborted with PoolClosedError when `end()` is called: every sleep and wait ends then. */
  private readonly lifetime = new AbortController();
  private readonly housekeeping: Housekeeping;
  private readonly poolEvents: PoolEventForwarding;
  private readonly autoRouting: boolean;
  /** Read/write classification of statement texts, memoised per pool. */
  private readonly sql = new SqlClassifier();
  private lifecycle: Lifecycle = { state: 'open' };
  private readonly budget: RetryBudget;
  /** Pool-level counters for stats() (per-endpoint ones live on each endpoint). */
  private readonly counters = { failovers: 0 };
  private telemetry: Telemetry | undefined;

  /** True once `end()` was called (pg.Pool's name). */
  get ending(): boolean {
    return this.lifecycle.state !== 'open';
  }

  /** True once `end()` finished (pg.Pool's name). */
  get ended(): boolean {
    return this.lifecycle.state === 'ended';
  }

  constructor(options: ResilientPoolOptions & WrappedPools<Pool>) {
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
          const endpoint = this.endpointNamed(p.endpoint);
          if (endpoint !== undefined) this.health?.onBreakerOpen(endpoint);
          // The primary's circuit opened: with candidates, find out whether another took over.
          if (endpoint?.role === 'primary') this.rediscoverPrimary();
        } else if (p.role === 'primary') {
          // Closed, or half-open: buffered calls may go (the oldest alone, as the probe).
          this.failover?.pump();
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
      up: (p: ResilientPoolEvents['up']) => {
        if (p.role === 'primary') this.failover?.pump();
        this.emitSafely('up', p);
      },
    };
    if (resolved.primaryCandidates !== undefined) {
      this.discovery = new PrimaryDiscovery(
        resolved.primaryCandidates,
        resolved.health.timeoutMs,
        logger,
        (from, to) => {
          this.counters.failovers++;
          // The primary endpoint now forwards to another server: its attributes follow it.
          this.router.primary.attributes = endpointAttributes(this.router.primary.pool);
          this.emitSafely('failover', { from, to });
        },
      );
      resolved.primary.pool = this.discovery.candidates;
    }
    const primary = new Endpoint(resolved.primary, 'primary', resolved, hooks, logger);
    const replicas = resolved.replicas.map(
      (r) => new Endpoint(r, 'replica', resolved, hooks, logger),
    );
    // One sweep period for slow calls, outlier ejection and slow start (options/outlier.ts).
    const { recovery } = resolved;
    const sweepMs = sweepIntervalMs(resolved.breaker, recovery);
    const outliers =
      recovery.outlier.enabled && replicas.length > 0 && sweepMs !== undefined
        ? new OutlierDetector<Endpoint>(
            replicas,
            {
              slowMs: recovery.outlier.slowMs,
              maxEjectionPercent: recovery.outlier.maxEjectionPercent,
              sweepMs,
            },
            // A replica whose statements go unanswered is probed at once, not at the next round.
            { requestProbe: (endpoint) => this.health?.probeNow(endpoint) },
          )
        : undefined;
    const slowStart =
      recovery.slowStart.windowMs > 0 && replicas.length > 0
        ? new SlowStart<Endpoint>(replicas, {
            windowMs: recovery.slowStart.windowMs,
            minShare: recovery.slowStart.minWeightPercent / 100,
          })
        : undefined;
    this.router = new Router(
      primary,
      replicas,
      createBalancer<Endpoint>(resolved.routing.balancer),
      resolved.routing.fallbackToPrimary,
      { outliers, slowStart, onChange: (change) => this.routingChanged(change) },
    );
    this.endpoints = this.router.all;
    this.discovery?.attach(primary);
    this.autoRouting = resolved.routing.queryRouting === 'auto';
    for (const endpoint of this.endpoints) endpoint.attributes = endpointAttributes(endpoint.pool);
    this.telemetry = createTelemetry(
      { metrics: resolved.metrics, tracing: resolved.tracing },
      { stats: () => this.stats(), logger },
    );
    for (const endpoint of this.endpoints) endpoint.timings = this.telemetry.timings;
    const budget = new RetryBudget(resolved.retry.budgetPercent, resolved.retry.budgetMinRetries);
    this.budget = budget;
    this.failover =
      resolved.failover.bufferMs > 0
        ? new FailoverBuffering({
            primary,
            candidates: this.discovery?.candidates,
            options: resolved.failover,
            lifetime: this.lifetime.signal,
            logger,
          })
        : undefined;
    this.housekeeping = new Housekeeping(budget, this.endpoints, resolved.breaker, {
      intervalMs: sweepMs,
      routing: outliers !== undefined || slowStart !== undefined ? this.router : undefined,
    });
    if (resolved.hedge.enabled) {
      const hedging = new Hedging(resolved.hedge, this.router, this.lifetime.signal);
      this.hedging = hedging;
      this.housekeeping.every(1_000, () => hedging.rotate());
    }
    this.callPath = new CallPath({
      router: this.router,
      retry: resolved.retry,
      budget,
      logger,
      candidates: this.discovery?.candidates,
      failover: this.failover,
      lifetime: this.lifetime.signal,
      onRetry: (p) => this.emitSafely('retry', p),
      telemetry: this.telemetry.calls,
      hedging: this.hedging,
    });
    this.poolEvents = new PoolEventForwarding(
      this.endpoints,
      logger,
      {
        listening: (event) => this.listenerCount(event) > 0,
        emit: (event, args) => this.emitPoolEvent(event, ...args),
      },
      () => !this.ended,
    );
    // The first candidate is assumed until the candidates have answered; writes wait for that.
    this.rediscoverPrimary();
    // The primary is probed too, also without replicas: a frozen server must be noticed.
    if (resolved.health.enabled) {
      this.health = new HealthMonitor(
        this.endpoints,
        { ...resolved.health, ...resolved.lag },
        {
          eject: (p) => {
            const endpoint = this.endpointNamed(p.endpoint);
            if (endpoint !== undefined) endpoint.counters.ejections++;
            this.emitSafely('eject', p);
          },
          readmit: (p) => {
            const endpoint = this.endpointNamed(p.endpoint);
            if (endpoint !== undefined) endpoint.counters.readmissions++;
            this.emitSafely('readmit', p);
          },
          // A primary that keeps failing its probes may have been replaced by a promotion that
          // happened after the last discovery: ask the candidates again, each round.
          probeFailed: (endpoint) => {
            if (endpoint.role === 'primary') this.rediscoverPrimary();
          },
          probeStarted: outliers && ((endpoint) => outliers.probeStarted(endpoint)),
          probeSettled:
            outliers && ((endpoint, answered) => outliers.probeSettled(endpoint, answered)),
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
    // Always built (a Map): `read(..., { consolidate: true })` works with the option off.
    this.consolidator = new Consolidator(resolved.consolidation.maxWaiters);
    this.statements = new Statements({
      callPath: this.callPath,
      router: this.router,
      sessions: this.sessions,
      sql: this.sql,
      readCache: this.readCache,
      consistencyWaitMs: resolved.routing.consistencyWaitMs,
      lifetime: this.lifetime.signal,
      consolidator: this.consolidator,
      consolidateReads: resolved.consolidation.enabled,
      hedging: this.hedging,
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
   * Resolves with the wrapped client's own result (a `pg.Result` for pg pools).
   *
   * A submittable (pg-cursor, pg-query-stream, `new pg.Query()`) runs on a client checked out
   * for it, which goes back to its pool once the submittable is done; the submittable is
   * returned, and a checkout that fails reaches it through its `handleError`, as pg's own
   * errors do.
   */
  query<T extends SubmittableLike>(submittable: T): T;
  query<R extends unknown[] = unknown[]>(
    config: QueryArrayConfigLike,
    values?: Values,
  ): Promise<PgQueryResult<R>>;
  query<R extends Row = Row>(
    text: string | QueryConfigLike,
    values?: Values,
  ): Promise<PgQueryResult<R>>;
  query<R extends unknown[] = unknown[]>(config: QueryArrayConfigLike, callback: Callback<R>): void;
  query<R extends Row = Row>(text: string | QueryConfigLike, callback: Callback<R>): void;
  query<R extends Row = Row>(
    text: string | QueryConfigLike,
    values: Values | undefined,
    callback: Callback<R>,
  ): void;
  query<R>(
    text: string | QueryConfigLike | SubmittableLike,
    valuesOrCallback?: Values | Callback<R>,
    callback?: Callback<R>,
  ): Promise<PgQueryResult<R>> | SubmittableLike | undefined {
    if (isSubmittable(text)) return this.submit(text);
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
      hedge: undefined,
    }) as Promise<PgQueryResult<R>>;
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
   * Checks out a client pinned to one endpoint: the wrapped pool's own client (a
   * `pg.PoolClient` for pg pools); call `release()`. Also accepts pg's callback form
   * `connect((err, client, done) => ...)`, where `done(err)` is `client.release(err)`.
   */
  connect(options?: ConnectOptions): Promise<ClientOf<Pool>>;
  connect(callback: ConnectCallback<ClientOf<Pool>>): void;
  connect(
    optionsOrCallback?: ConnectOptions | ConnectCallback<ClientOf<Pool>>,
  ): Promise<ClientOf<Pool>> | undefined {
    if (typeof optionsOrCallback === 'function') {
      const cb = optionsOrCallback;
      this.connect().then(
        (client) =>
          callBack(cb, undefined, client, (release?: Error | boolean) => client.release(release)),
        // As pg: on failure no client, and a `done` that does nothing.
        (err: Error) => callBack(cb, err, undefined, () => {}),
      );
      return undefined;
    }
    const invalid = callOptionsError('connect', optionsOrCallback, CONNECT_KEYS);
    if (invalid) return Promise.reject(invalid);
    const role: CallRole = optionsOrCallback?.role === 'read' ? 'read' : 'write';
    return withDeadline(optionsOrCallback?.timeout, optionsOrCallback?.signal, (signal) =>
      this.callPath.checkout(role, signal),
    ) as Promise<ClientOf<Pool>>;
  }

  /**
   * Runs a submittable on a client of its own; the client goes back once pg has finished with
   * it (the client's 'drain'), or is destroyed if its connection fails.
   */
  private submit<T extends SubmittableLike>(submittable: T): T {
    const sql = (submittable as { text?: unknown }).text;
    const role: ConnectOptions['role'] =
      this.autoRouting && typeof sql === 'string' && this.sql.classify(sql) === 'read'
        ? 'read'
        : 'write';
    this.connect({ role }).then(
      (client) => {
        const events = client as unknown as SubmittingClient;
        const done = (err?: Error) => {
          events.off('drain', onDrain);
          events.off('error', onError);
          client.release(err);
        };
        const onDrain = () => done();
        const onError = (err: Error) => done(err);
        events.once('drain', onDrain);
        events.once('error', onError);
        try {
          client.query(submittable);
        } catch (err) {
          // Refused before anything was sent: the client goes back, the submittable hears why.
          done();
          failSubmittable(submittable, err as Error);
        }
      },
      (err: Error) => failSubmittable(submittable, err),
    );
    return submittable;
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
      rerunLostBegin: this.failover !== undefined && options.role !== 'read',
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

  private endpointNamed(name: string): Endpoint | undefined {
    return this.endpoints?.find((e) => e.name === name);
  }

  /**
   * Every event also goes to its diagnostics channel (built only when someone subscribed there),
   * then to the pool's listeners.
   */
  protected override emitSafely<E extends EventName>(
    event: E,
    payload: ResilientPoolEvents[E],
  ): void {
    // Undefined only while the constructor runs, before any call could cause an event.
    if (isDiagnosticsEvent(event)) this.telemetry?.events.publish(event, payload as never);
    super.emitSafely(event, payload);
  }

  /** An endpoint's routing state changed (outlier ejection, panic, slow start): log and emit. */
  private routingChanged(change: ResilientPoolEvents['routing']): void {
    const out = change.state === 'ejected' || change.state === 'panic';
    this.logger[out ? 'warn' : 'info'](
      {
        endpoint: change.endpoint,
        state: change.state,
        previous: change.previous,
        reason: change.reason,
      },
      `resilient-pool: "${change.endpoint}" is ${change.state} in read routing${change.reason === null ? '' : `: ${change.reason}`}`,
    );
    this.emitSafely('routing', change);
  }

  /** With candidates, asks them again which is writable (see primary-discovery.ts). */
  private rediscoverPrimary(): void {
    if (!this.ending) this.discovery?.rediscover();
  }

  /** A plain snapshot of every endpoint's state and counters. */
  stats(): PoolStats {
    const stats = snapshotStats(
      this.endpoints,
      {
        failovers: this.counters.failovers,
        retryBudgetExhausted: this.budget.refusals,
        consolidation: this.consolidator.stats(),
      },
      this.router,
    );
    if (this.readCache !== undefined) stats.cache = this.readCache.stats();
    if (this.failover !== undefined) stats.failover = this.failover.stats();
    if (this.hedging !== undefined) stats.hedges = this.hedging.stats();
    return stats;
  }

  /**
   * The primary pool's options (pg.Pool exposes its own). Query builders read it: Kysely's
   * PostgresDialect requires it. It is the caller's own object, never logged by this library.
   */
  get options(): NonNullable<Pool['options']> {
    return (this.router.primary.pool.options ?? {}) as NonNullable<Pool['options']>;
  }

  /** Clients open in the wrapped pools (pg.Pool's `totalCount`, summed). */
  get totalCount(): number {
    return this.endpoints.reduce((sum, e) => sum + e.pool.totalCount, 0);
  }

  /** Idle clients in the wrapped pools (pg.Pool's `idleCount`, summed). */
  get idleCount(): number {
    return this.endpoints.reduce((sum, e) => sum + e.pool.idleCount, 0);
  }

  /** Clients past their `maxLifetimeSeconds` in the wrapped pools (pg.Pool's, summed). */
  get expiredCount(): number {
    return this.endpoints.reduce((sum, e) => sum + (e.pool.expiredCount ?? 0), 0);
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

  /**
   * Listens to an event. pg-pool's events ('connect', 'acquire', 'release', 'remove', 'error')
   * come from every wrapped pool with pg's arguments, then the endpoint's name, so pg.Pool
   * listeners work unchanged; the others carry one payload (see {@link ResilientPoolEvents}).
   * A listener that throws or rejects is logged and never breaks a call.
   *
   * @example
   * db.on('connect', (client, endpoint) => client.query(`SET application_name = 'api:${endpoint}'`));
   * db.on('breaker', ({ endpoint, state }) => metrics.gauge(`breaker.${endpoint}`, state));
   */
  override on<K extends PoolEventName>(
    event: K,
    listener: PoolEventListener<K, ClientOf<Pool>>,
  ): this;
  override on<E extends Exclude<EventName, 'error'>>(
    event: E,
    listener: (payload: ResilientPoolEvents[E]) => void,
  ): this;
  override on(event: string, listener: AnyListener): this {
    return super.on(event, listener);
  }

  /** As {@link on}, once. */
  override once<K extends PoolEventName>(
    event: K,
    listener: PoolEventListener<K, ClientOf<Pool>>,
  ): this;
  override once<E extends Exclude<EventName, 'error'>>(
    event: E,
    listener: (payload: ResilientPoolEvents[E]) => void,
  ): this;
  override once(event: string, listener: AnyListener): this {
    return super.once(event, listener);
  }

  override off<K extends PoolEventName>(
    event: K,
    listener: PoolEventListener<K, ClientOf<Pool>>,
  ): this;
  override off<E extends Exclude<EventName, 'error'>>(
    event: E,
    listener: (payload: ResilientPoolEvents[E]) => void,
  ): this;
  override off(event: string, listener: AnyListener): this {
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
        poolEvents: this.poolEvents,
        ownsPools: this.resolved.ownsPools,
        logger: this.logger,
      },
      timeoutMs,
    ).finally(() => {
      this.telemetry?.shutdown();
      this.lifecycle = { state: 'ended', done };
    });
    this.lifecycle = { state: 'ending', done };
    return done;
  }
}

/** The events of a pg client that say a submittable is done with it. */
interface SubmittingClient {
  once(event: 'drain', listener: () => void): unknown;
  once(event: 'error', listener: (err: Error) => void): unknown;
  off(event: 'drain' | 'error', listener: (...args: never[]) => void): unknown;
}

function isSubmittable(text: unknown): text is SubmittableLike {
  return typeof (text as { submit?: unknown } | null)?.submit === 'function';
}

/**
 * Hands a checkout error to a submittable the way pg hands it a connection error: through its
 * `handleError` (pg.Query, pg-cursor, pg-query-stream), else as an 'error' event.
 */
function failSubmittable(submittable: SubmittableLike, err: Error): void {
  const target = submittable as {
    handleError?: (err: Error) => void;
    emit?: (event: 'error', err: Error) => unknown;
  };
  try {
    if (typeof target.handleError === 'function') target.handleError(err);
    else if (typeof target.emit === 'function') target.emit('error', err);
  } catch (thrown) {
    // What the submittable's own error handling throws is the application's, as in pg.
    process.nextTick(() => {
      throw thrown;
    });
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
