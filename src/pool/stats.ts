/**
 * The stats() snapshot: plain data (JSON-serialisable, no live objects), per endpoint. The shape
 * is stable (docs/observability.md lists every field): fields are added, never renamed or
 * removed, within a major version. The OpenTelemetry instruments read these same numbers.
 */
import type { CacheStats } from '../cache/stats.js';
import type { ErrorClass } from '../classify.js';
import type { AdaptiveLimitSnapshot } from '../endpoint/adaptive-limit.js';
import type { Endpoint } from '../endpoint/endpoint.js';
import type { HealthState } from '../health/types.js';
import type { HedgeStats } from '../routing/hedge.js';
import type { Router } from '../routing/router.js';
import type {
  BreakerState,
  EndpointRole,
  RejectReason,
  RoutingState,
} from '../telemetry/events.js';
import type { LatencySummary } from '../telemetry/latency-window.js';
import type { ConsolidationStats } from './consolidation.js';
import type { FailoverBufferStats } from './failover-buffer.js';

export type { HedgeStats } from '../routing/hedge.js';
export type { LatencySummary } from '../telemetry/latency-window.js';

export interface EndpointStats {
  name: string;
  role: EndpointRole;
  breaker: BreakerState;
  /** Clients open in the wrapped pool. */
  total: number;
  /** Idle clients in the wrapped pool. */
  idle: number;
  /** Clients checked out of the wrapped pool. */
  inUse: number;
  /** The wrapped pool's `max` (pg's default 10 when it does not say). */
  maxConnections: number;
  /** Calls holding a gate permit. */
  inFlight: number;
  /**
   * Permits the gate gives now: the endpoint's maxConcurrent, or, with `queue.adaptiveLimit`,
   * what the limit found the server can take.
   */
  limit: number;
  /**
   * With `queue.adaptiveLimit`: the latest sample window's mean time on the server and the
   * baseline it was compared with (Gradient2's long-run average, Vegas's fastest), in ms (null
   * before the first window). Null when the option is off.
   */
  adaptiveLimit: AdaptiveLimitSnapshot | null;
  /** Calls waiting in the gate's queue. */
  queued: number;
  /** Calls waiting for a connection: the gate's queue plus the wrapped pool's own waiters. */
  pending: number;
  calls: number;
  successes: number;
  sqlErrors: number;
  failures: number;
  /** Statements that ran past `breaker.slowCallMs` (counted as failures while in flight). */
  slowCalls: number;
  retries: number;
  /** Retries after a failure on this endpoint, by the failure's class. */
  retriesByReason: Record<ErrorClass, number>;
  rejected: Record<RejectReason, number>;
  /** Circuit state changes since the pool was made, by the state entered. */
  breakerTransitions: { open: number; halfOpen: number; closed: number };
  /** Times this replica was taken out of read routing by the health monitor, and put back. */
  ejections: number;
  readmissions: number;
  /**
   * Statement attempts over the last minute, from admission (a wait in the queue included) to
   * the answer, in ms: nearest-rank percentiles, at most 6.25% above the true value.
   */
  latency: LatencySummary;
  /** The part of each call (statements and checkouts) spent waiting for a client, in ms. */
  wait: LatencySummary;
  /**
   * Declared down by the health monitor (its probe got no answer): calls are refused with
   * EndpointDownError until a probe passes.
   */
  down: boolean;
  /** From the health monitor: 'unknown' without one (or before its first probe). */
  health: HealthState;
  /**
   * Where the endpoint stands in read routing: 'routed', 'slow-start' (a replica back from an
   * outage, its share of reads ramping up), 'ejected' (no new reads: silent, down, circuit not
   * closed, held back by the health monitor) or 'panic' (ejected as an outlier but given reads,
   * every replica being out).
   */
  routing: RoutingState;
  /** Why it is out of routing (or in panic); null when routed or slow-starting. */
  routingReason: string | null;
  /** Its share of reads while slow-starting, from `slowStart.minWeightPercent` to 1. */
  share: number;
  /** Times this replica was ejected as an outlier (silent: a probe unanswered past `outlier.slowMs`). */
  outlierEjections: number;
  /** Connects allowed in flight at once while pacing after an outage; null when not pacing. */
  connectAllowance: number | null;
  /** Calls that waited for the pacing allowance to open a connection. */
  pacedConnects: number;
  /** Replay lag of a replica, from the latest probes (null: unknown). */
  lagBytes: number | null;
  lagMs: number | null;
}

export interface PoolStats {
  endpoints: EndpointStats[];
  /** The read-through cache, when the pool has one. */
  cache?: CacheStats;
  /** Failover buffering, when it is on (`failover.bufferMs` above 0). */
  failover?: FailoverBufferStats;
  /** Hedged reads, when the `hedge` option is on: reads hedgeable, hedges sent, won, refused. */
  hedges?: HedgeStats;
  totalCount: number;
  idleCount: number;
  /** Calls waiting for a connection, over every endpoint (`pending` summed). */
  waitingCount: number;
  /** Times writes moved to another primary candidate (the 'failover' event). */
  failovers: number;
  /** Retries not made because the retry budget was spent. */
  retryBudgetExhausted: number;
  /** Query consolidation: reads that shared another's execution (all zero while unused). */
  consolidation: ConsolidationStats;
  /** The same data, for `JSON.stringify` (the snapshot is already plain; this copies it). */
  toJSON(): PoolStatsJSON;
}

/** `PoolStats` without its method: what `JSON.stringify(db.stats())` writes. */
export type PoolStatsJSON = Omit<PoolStats, 'toJSON'>;

/** Pool-level counters kept by the pool itself. */
export interface PoolCounters {
  failovers: number;
  retryBudgetExhausted: number;
  consolidation: ConsolidationStats;
}

/** pg's own default pool size. */
const PG_DEFAULT_MAX = 10;

function endpointStats(e: Endpoint, router: Router): EndpointStats {
  const { counters, pool, gate } = e;
  return {
    name: e.name,
    role: e.role,
    breaker: e.breakerState,
    total: pool.totalCount,
    idle: pool.idleCount,
    inUse: pool.totalCount - pool.idleCount,
    maxConnections: pool.options?.max ?? PG_DEFAULT_MAX,
    inFlight: gate.inUse,
    limit: gate.limit,
    adaptiveLimit: e.limiter?.snapshot() ?? null,
    queued: gate.waiting,
    pending: gate.waiting + pool.waitingCount,
    calls: counters.calls,
    successes: counters.successes,
    sqlErrors: counters.sqlErrors,
    failures: counters.failures,
    slowCalls: counters.slowCalls,
    retries: counters.retries,
    retriesByReason: { ...counters.retriesByReason },
    rejected: { ...counters.rejected },
    breakerTransitions: { ...counters.breakerTransitions },
    ejections: counters.ejections,
    readmissions: counters.readmissions,
    latency: e.latency.summary(),
    wait: e.waits.summary(),
    down: e.isDown,
    health: e.health.state,
    routing: router.routingState(e),
    routingReason: router.reasonFor(e),
    share: router.shareOf(e),
    outlierEjections: router.outlierEjections(e),
    connectAllowance: e.pacer.currentAllowance,
    pacedConnects: e.pacer.waited,
    lagBytes: e.health.lagBytes,
    lagMs: e.health.lagMs === null ? null : Math.round(e.health.lagMs),
  };
}

function toJSON(this: PoolStats): PoolStatsJSON {
  const { toJSON: _method, ...data } = this;
  return structuredClone(data);
}

export function snapshotStats(
  endpoints: readonly Endpoint[],
  counters: PoolCounters,
  router: Router,
): PoolStats {
  const list = endpoints.map((e) => endpointStats(e, router));
  const stats = {
    endpoints: list,
    totalCount: list.reduce((s, e) => s + e.total, 0),
    idleCount: list.reduce((s, e) => s + e.idle, 0),
    waitingCount: list.reduce((s, e) => s + e.pending, 0),
    failovers: counters.failovers,
    retryBudgetExhausted: counters.retryBudgetExhausted,
    consolidation: counters.consolidation,
  } as PoolStats;
  // Not enumerable: spreading or deep-comparing a snapshot sees only its data.
  Object.defineProperty(stats, 'toJSON', { value: toJSON, enumerable: false });
  return stats;
}
