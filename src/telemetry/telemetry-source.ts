/**
 * What the pool gives its telemetry: its stats() snapshot (and its logger). The observable
 * instruments read the snapshot once per collection (one batch callback), so the numbers a
 * dashboard shows are the numbers stats() shows, and nothing runs per query for them.
 *
 * The snapshot is typed here by the fields telemetry reads, not by pool/stats.ts's PoolStats:
 * telemetry sits under the pool, and PoolStats (which has more) is assignable to it.
 */
import type { BreakerState, EndpointRole, RejectReason } from './events.js';
import type { LoggerLike } from './logger.js';

/** The fields of one endpoint's stats that the instruments observe. */
export interface ObservedEndpointStats {
  name: string;
  role: EndpointRole;
  breaker: BreakerState;
  /** Idle clients in the wrapped pool. */
  idle: number;
  /** Clients checked out of the wrapped pool. */
  inUse: number;
  /** Most connections the endpoint will open. */
  maxConnections: number;
  /** Calls waiting for a connection: the pool's queue plus the wrapped pool's own waiters. */
  pending: number;
  down: boolean;
  rejected: Readonly<Record<RejectReason, number>>;
  breakerTransitions: { readonly open: number; readonly halfOpen: number; readonly closed: number };
  ejections: number;
  readmissions: number;
  retriesByReason: Readonly<Record<string, number>>;
  lagBytes: number | null;
  lagMs: number | null;
}

/** The fields of the pool's stats that the instruments observe. */
export interface ObservedPoolStats {
  endpoints: readonly ObservedEndpointStats[];
  cache?: { hits: number; misses: number; staleServes: number; bypasses: number };
  failovers: number;
  retryBudgetExhausted: number;
  /** Hedged reads, when the `hedge` option is on. */
  hedges?: {
    sent: number;
    won: number;
    cancelled: number;
    budgetRefused: number;
    noTarget: number;
  };
}

export interface TelemetrySource {
  stats(): ObservedPoolStats;
  /**
   * Where a failure of the telemetry itself is reported (a provider that throws, say): once, as
   * a warning; the call goes on. None: such failures are ignored silently.
   */
  readonly logger?: LoggerLike;
}
