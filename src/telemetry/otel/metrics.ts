/**
 * The pool's OpenTelemetry instruments (the table in docs/observability.md).
 *
 * - Per call: one `db.client.operation.duration` point, and the connection's wait and use times
 *   (through ConnectionTimings, fed by the endpoints). These are synchronous histograms.
 * - Everything else is asynchronous and read from one stats() snapshot per collection, in one
 *   batch callback: connections by state, the maximum, pending requests, breaker state and
 *   transitions, retries, rejections, ejections, failovers, lag, the cache's reads and hedges.
 *   Those are the very counters stats() reports, so nothing runs per query for them.
 *
 * Names, units (seconds for durations) and attributes follow the semantic conventions for
 * database client metrics; `db.client.connection.pool.name` is the endpoint's name. The pool's
 * own behaviour has instruments under `resilient_pool.*`.
 */
import type { ConnectionTimings, ObservedEndpoint } from '../observer.js';
import type { ObservedEndpointStats, TelemetrySource } from '../telemetry-source.js';
import type {
  MeterLike,
  OtelAttributes,
  OtelBatchObservableCallback,
  OtelBatchObservableResult,
  OtelCounter,
  OtelHistogram,
  OtelObservable,
} from './api-types.js';
import {
  DB_SYSTEM,
  errorType,
  operationName,
  POOL_NAME,
  poolAttributes,
  responseStatusCode,
  serverAttributes,
} from './attributes.js';

const INT = 0;
const DOUBLE = 1;

/** The conventions' advice for db.client.operation.duration, in seconds. */
export const OPERATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
/**
 * Waits for a client: the same, with two buckets below 1 ms, where a pooled checkout lands (tens
 * of microseconds) and where a wait that grows first shows.
 */
export const WAIT_BUCKETS = [0.0001, 0.0005, ...OPERATION_BUCKETS];

const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;

/** The attributes of one endpoint's series, computed once per endpoint (and per change). */
interface EndpointSeries {
  /** The endpoint's `attributes` they were computed from: a failover may replace it. */
  source: ObservedEndpoint['attributes'];
  pool: OtelAttributes;
  /** The success attributes of db.client.operation.duration, by operation name ('' for none). */
  operations: Map<string, OtelAttributes>;
}

export class PoolMetrics implements ConnectionTimings {
  private readonly operationDuration: OtelHistogram;
  private readonly waitTime: OtelHistogram;
  private readonly useTime: OtelHistogram;
  private readonly createTime: OtelHistogram;
  private readonly timeouts: OtelCounter;
  private readonly connectionCount: OtelObservable;
  private readonly connectionMax: OtelObservable;
  private readonly pendingRequests: OtelObservable;
  private readonly breakerState: OtelObservable;
  private readonly breakerTransitions: OtelObservable;
  private readonly endpointDown: OtelObservable;
  private readonly retries: OtelObservable;
  private readonly retryBudgetExhausted: OtelObservable;
  private readonly rejections: OtelObservable;
  private readonly ejections: OtelObservable;
  private readonly readmissions: OtelObservable;
  private readonly failovers: OtelObservable;
  private readonly lagBytes: OtelObservable;
  private readonly lagTime: OtelObservable;
  private readonly cacheReads: OtelObservable;
  private readonly hedges: OtelObservable;
  private readonly hedgeWins: OtelObservable;
  private readonly hedgeCancellations: OtelObservable;
  private readonly hedgeSkips: OtelObservable;
  private readonly observables: OtelObservable[];
  private readonly callback: OtelBatchObservableCallback = (result) => this.observe(result);
  private readonly series = new Map<ObservedEndpoint, EndpointSeries>();
  private registered = true;

  constructor(
    private readonly meter: MeterLike,
    private readonly source: TelemetrySource,
  ) {
    const histogram = (name: string, description: string, buckets: number[]) =>
      meter.createHistogram(name, {
        description,
        unit: 's',
        valueType: DOUBLE,
        advice: { explicitBucketBoundaries: buckets },
      });
    const counts = { valueType: INT } as const;
    const observedCounter = (name: string, unit: string, description: string) =>
      meter.createObservableCounter(name, { description, unit, ...counts });
    this.operationDuration = histogram(
      'db.client.operation.duration',
      'Duration of database client operations: a whole call, retries included.',
      OPERATION_BUCKETS,
    );
    this.waitTime = histogram(
      'db.client.connection.wait_time',
      'The time it took to obtain an open connection from the pool (its queue included).',
      WAIT_BUCKETS,
    );
    this.useTime = histogram(
      'db.client.connection.use_time',
      'The time between borrowing a connection and returning it to the pool.',
      OPERATION_BUCKETS,
    );
    this.createTime = histogram(
      'db.client.connection.create_time',
      'The time it took to create a new connection.',
      OPERATION_BUCKETS,
    );
    this.timeouts = meter.createCounter('db.client.connection.timeouts', {
      description:
        'The number of connection timeouts that have occurred trying to obtain a connection from the pool.',
      unit: '{timeout}',
      ...counts,
    });
    this.connectionCount = meter.createObservableUpDownCounter('db.client.connection.count', {
      description:
        'The number of connections that are currently in the state of the state attribute.',
      unit: '{connection}',
      ...counts,
    });
    this.connectionMax = meter.createObservableUpDownCounter('db.client.connection.max', {
      description: 'The maximum number of open connections allowed.',
      unit: '{connection}',
      ...counts,
    });
    this.pendingRequests = meter.createObservableUpDownCounter(
      'db.client.connection.pending_requests',
      {
        description:
          "The number of pending requests for an open connection: the pool's queue plus the wrapped pool's own waiters.",
        unit: '{request}',
        ...counts,
      },
    );
    this.breakerState = meter.createObservableGauge('resilient_pool.breaker.state', {
      description:
        "1 for the endpoint circuit's current state (closed, open, half-open), 0 for the others.",
      unit: '1',
      ...counts,
    });
    this.breakerTransitions = observedCounter(
      'resilient_pool.breaker.transitions',
      '{transition}',
      'Circuit state changes, by the state entered.',
    );
    this.endpointDown = meter.createObservableGauge('resilient_pool.endpoint.down', {
      description:
        '1 while the endpoint is declared down (its health probe got no answer), else 0.',
      unit: '1',
      ...counts,
    });
    this.retries = observedCounter(
      'resilient_pool.retries',
      '{retry}',
      'Calls tried again after a failure on the endpoint, by the failure class.',
    );
    this.retryBudgetExhausted = observedCounter(
      'resilient_pool.retry_budget.exhausted',
      '{retry}',
      'Retries refused because the retry budget was spent.',
    );
    this.rejections = observedCounter(
      'resilient_pool.rejections',
      '{call}',
      'Calls refused before reaching the database, by reason.',
    );
    this.ejections = observedCounter(
      'resilient_pool.ejections',
      '{ejection}',
      'Times the replica was taken out of read routing.',
    );
    this.readmissions = observedCounter(
      'resilient_pool.readmissions',
      '{readmission}',
      'Times an ejected replica passed a probe and served reads again.',
    );
    this.failovers = observedCounter(
      'resilient_pool.failovers',
      '{failover}',
      'Times writes moved to another primary candidate.',
    );
    this.lagBytes = meter.createObservableGauge('resilient_pool.replica.lag_bytes', {
      description: "The replica's replay lag behind the primary, in bytes of WAL.",
      unit: 'By',
      ...counts,
    });
    this.lagTime = meter.createObservableGauge('resilient_pool.replica.lag_time', {
      description: "The replica's replay lag behind the primary, in time.",
      unit: 's',
      valueType: DOUBLE,
    });
    this.cacheReads = observedCounter(
      'resilient_pool.cache.reads',
      '{read}',
      'Reads of the read-through cache, by result (hit, miss, stale, bypass).',
    );
    this.hedges = observedCounter(
      'resilient_pool.hedges',
      '{hedge}',
      'Hedges sent: reads that had not answered after the hedge delay and went to a second endpoint too.',
    );
    this.hedgeWins = observedCounter(
      'resilient_pool.hedge.wins',
      '{hedge}',
      "Hedges whose answer was taken (the first endpoint's statement lost).",
    );
    this.hedgeCancellations = observedCounter(
      'resilient_pool.hedge.cancellations',
      '{statement}',
      'Losing statements of hedged reads still running after their grace, cancelled on their server.',
    );
    this.hedgeSkips = observedCounter(
      'resilient_pool.hedge.skips',
      '{read}',
      'Reads past the hedge delay that were not hedged, by reason (budget spent, no other endpoint).',
    );
    this.observables = [
      this.connectionCount,
      this.connectionMax,
      this.pendingRequests,
      this.breakerState,
      this.breakerTransitions,
      this.endpointDown,
      this.retries,
      this.retryBudgetExhausted,
      this.rejections,
      this.ejections,
      this.readmissions,
      this.failovers,
      this.lagBytes,
      this.lagTime,
      this.cacheReads,
      this.hedges,
      this.hedgeWins,
      this.hedgeCancellations,
      this.hedgeSkips,
    ];
    meter.addBatchObservableCallback(this.callback, this.observables);
  }

  waited(endpoint: ObservedEndpoint, ms: number, timedOut: boolean): void {
    // A wait that timed out obtained nothing: it is a timeout, not a wait time.
    if (timedOut) this.timeouts.add(1, this.seriesOf(endpoint).pool);
    else this.waitTime.record(ms / 1000, this.seriesOf(endpoint).pool);
  }

  used(endpoint: ObservedEndpoint, ms: number): void {
    this.useTime.record(ms / 1000, this.seriesOf(endpoint).pool);
  }

  created(endpoint: ObservedEndpoint, ms: number): void {
    this.createTime.record(ms / 1000, this.seriesOf(endpoint).pool);
  }

  /**
   * A call ended after `seconds`, on `endpoint` (its last attempt's; undefined when none was
   * made), with `error` when it failed (`failed` tells an `undefined` rejection apart).
   */
  operation(
    endpoint: ObservedEndpoint | undefined,
    text: string | undefined,
    seconds: number,
    failed: boolean,
    error: unknown,
  ): void {
    const operation = operationName(text);
    if (!failed && endpoint !== undefined) {
      this.operationDuration.record(seconds, this.successAttributes(endpoint, operation));
      return;
    }
    // Failures are the rare path: their attributes are built each time.
    const attributes: Record<string, string | number> =
      endpoint === undefined ? { 'db.system.name': DB_SYSTEM } : { ...serverAttributes(endpoint) };
    if (operation !== undefined) attributes['db.operation.name'] = operation;
    if (failed) {
      attributes['error.type'] = errorType(error);
      const status = responseStatusCode(error);
      if (status !== undefined) attributes['db.response.status_code'] = status;
    }
    this.operationDuration.record(seconds, attributes);
  }

  /** Stops observing (at `end()`): the meter no longer calls into an ended pool. */
  shutdown(): void {
    if (!this.registered) return;
    this.registered = false;
    this.meter.removeBatchObservableCallback(this.callback, this.observables);
  }

  private seriesOf(endpoint: ObservedEndpoint): EndpointSeries {
    let series = this.series.get(endpoint);
    if (series === undefined || series.source !== endpoint.attributes) {
      series = {
        source: endpoint.attributes,
        pool: poolAttributes(endpoint),
        operations: new Map(),
      };
      this.series.set(endpoint, series);
    }
    return series;
  }

  private successAttributes(endpoint: ObservedEndpoint, operation: string | undefined) {
    const { operations } = this.seriesOf(endpoint);
    const key = operation ?? '';
    let attributes = operations.get(key);
    if (attributes === undefined) {
      // No pool name: the conventions do not put it on this instrument, and the SDK hashes every
      // attribute of every record (about 0.3 µs each), so each one is paid on every call.
      const built: Record<string, string | number> = { ...serverAttributes(endpoint) };
      if (operation !== undefined) built['db.operation.name'] = operation;
      attributes = built;
      operations.set(key, attributes);
    }
    return attributes;
  }

  private observe(result: OtelBatchObservableResult): void {
    const stats = this.source.stats();
    for (const e of stats.endpoints) this.observeEndpoint(result, e);
    result.observe(this.retryBudgetExhausted, stats.retryBudgetExhausted);
    result.observe(this.failovers, stats.failovers);
    const cache = stats.cache;
    if (cache !== undefined) {
      const read = (value: number, outcome: string) =>
        result.observe(this.cacheReads, value, { 'resilient_pool.cache.result': outcome });
      read(cache.hits, 'hit');
      read(cache.misses, 'miss');
      read(cache.staleServes, 'stale');
      read(cache.bypasses, 'bypass');
    }
    const hedges = stats.hedges;
    if (hedges !== undefined) {
      result.observe(this.hedges, hedges.sent);
      result.observe(this.hedgeWins, hedges.won);
      result.observe(this.hedgeCancellations, hedges.cancelled);
      const skipped = (value: number, reason: string) =>
        result.observe(this.hedgeSkips, value, { 'resilient_pool.hedge.skip_reason': reason });
      skipped(hedges.budgetRefused, 'budget');
      skipped(hedges.noTarget, 'no-target');
    }
  }

  private observeEndpoint(result: OtelBatchObservableResult, e: ObservedEndpointStats): void {
    // The observed series also carry the role: they cost nothing per call.
    const pool = { [POOL_NAME]: e.name, 'resilient_pool.role': e.role };
    const state = (value: string) => ({ ...pool, 'db.client.connection.state': value });
    result.observe(this.connectionCount, e.idle, state('idle'));
    result.observe(this.connectionCount, e.inUse, state('used'));
    result.observe(this.connectionMax, e.maxConnections, pool);
    result.observe(this.pendingRequests, e.pending, pool);
    for (const s of BREAKER_STATES) {
      result.observe(this.breakerState, e.breaker === s ? 1 : 0, {
        ...pool,
        'resilient_pool.breaker.state': s,
      });
    }
    const transitions = e.breakerTransitions;
    const entered = (value: number, s: string) =>
      result.observe(this.breakerTransitions, value, {
        ...pool,
        'resilient_pool.breaker.state': s,
      });
    entered(transitions.open, 'open');
    entered(transitions.halfOpen, 'half-open');
    entered(transitions.closed, 'closed');
    result.observe(this.endpointDown, e.down ? 1 : 0, pool);
    for (const [reason, n] of Object.entries(e.retriesByReason)) {
      result.observe(this.retries, n, { ...pool, 'resilient_pool.retry.reason': reason });
    }
    for (const [reason, n] of Object.entries(e.rejected)) {
      result.observe(this.rejections, n, { ...pool, 'resilient_pool.reject.reason': reason });
    }
    if (e.role === 'replica') {
      result.observe(this.ejections, e.ejections, pool);
      result.observe(this.readmissions, e.readmissions, pool);
      if (e.lagBytes !== null) result.observe(this.lagBytes, e.lagBytes, pool);
      if (e.lagMs !== null) result.observe(this.lagTime, e.lagMs / 1000, pool);
    }
  }
}
