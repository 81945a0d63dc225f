/**
 * The stats() snapshot: plain data (JSON-serialisable, no live objects), per endpoint.
 */
import type { CacheStats } from '../cache/stats.js';
import type { Endpoint } from '../endpoint/endpoint.js';
import type { HealthState } from '../health/types.js';
import type { BreakerState, EndpointRole, RejectReason } from '../telemetry/events.js';

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
  /** Calls holding a gate permit. */
  inFlight: number;
  /** Calls waiting in the gate's queue. */
  queued: number;
  calls: number;
  successes: number;
  sqlErrors: number;
  failures: number;
  /** Statements that ran past `breaker.slowCallMs` (counted as failures while in flight). */
  slowCalls: number;
  retries: number;
  rejected: Record<RejectReason, number>;
  /**
   * Declared down by the health monitor (its probe got no answer): calls are refused with
   * EndpointDownError until a probe passes.
   */
  down: boolean;
  /** From the health monitor: 'unknown' without one (or before its first probe). */
  health: HealthState;
  /** Replay lag of a replica, from the latest probes (null: unknown). */
  lagBytes: number | null;
  lagMs: number | null;
}

export interface PoolStats {
  endpoints: EndpointStats[];
  /** The read-through cache, when the pool has one. */
  cache?: CacheStats;
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

export function snapshotStats(endpoints: readonly Endpoint[]): PoolStats {
  const list = endpoints.map((e): EndpointStats => {
    const { counters, pool, gate } = e;
    return {
      name: e.name,
      role: e.role,
      breaker: e.breakerState,
      total: pool.totalCount,
      idle: pool.idleCount,
      inUse: pool.totalCount - pool.idleCount,
      inFlight: gate.inUse,
      queued: gate.waiting,
      calls: counters.calls,
      successes: counters.successes,
      sqlErrors: counters.sqlErrors,
      failures: counters.failures,
      slowCalls: counters.slowCalls,
      retries: counters.retries,
      rejected: { ...counters.rejected },
      down: e.isDown,
      health: e.health.state,
      lagBytes: e.health.lagBytes,
      lagMs: e.health.lagMs === null ? null : Math.round(e.health.lagMs),
    };
  });
  return {
    endpoints: list,
    totalCount: list.reduce((s, e) => s + e.total, 0),
    idleCount: list.reduce((s, e) => s + e.idle, 0),
    waitingCount:
      list.reduce((s, e) => s + e.queued, 0) +
      endpoints.reduce((s, e) => s + e.pool.waitingCount, 0),
  };
}
