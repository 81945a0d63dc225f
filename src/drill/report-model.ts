/**
 * The data a drill produces: what the live status line, the summary table, `--json` and the
 * HTML report are all drawn from. Plain JSON-serialisable data; times are milliseconds since the
 * drill's start unless named otherwise.
 *
 * Calls are attributed to the window in which they STARTED: a call that hangs through a fault and
 * completes after it counts in the fault's window, not after it.
 */

/** Breaker state of one endpoint as the drill saw it during one sample. */
export type EndpointBand = 'closed' | 'half-open' | 'open';

/**
 * What routing did with an endpoint during one sample, which the breaker alone does not tell:
 * - `serving`: it got calls;
 * - `avoided`: it got no call while the other endpoints of its role did (the balancer routes
 *   around it, or its circuit is open);
 * - `idle`: nobody asked for its role in the window;
 * - `lagging`: a replica held back because its replay lag is past the bound;
 * - `ejected`: a replica taken out of read routing (a failed probe, an open circuit, an outlier);
 * - `down`: declared down by the health monitor, its calls refused at once.
 */
export type RoutingBand = 'serving' | 'avoided' | 'idle' | 'lagging' | 'ejected' | 'down';

/** One endpoint at the end of one sample: its routing and its connections. */
export interface EndpointState {
  routing: RoutingBand;
  /** Calls waiting for a connection: the pool's queue plus the wrapped pool's own waiters. */
  pending: number;
  /** Connections of the wrapped pool, by state (OpenTelemetry's `idle` / `used`). */
  idle: number;
  used: number;
  /** The wrapped pool's `max`, when known. */
  max: number | null;
  /** Calls the endpoint took during the window (its `calls` counter's growth). */
  calls: number;
  /** Replay lag of a replica from the health monitor, ms (null: unknown or a primary). */
  lagMs: number | null;
  /**
   * Permits its gate gives at the end of the window: the pool size, or what the adaptive limit
   * set (absent in reports of older drills).
   */
  limit?: number;
}

/** One second of the drill. */
export interface DrillSample {
  /** End of the sample window, ms since start. */
  t: number;
  /** Calls started in the window that succeeded. */
  ok: number;
  /** Calls started in the window that surfaced an error to the caller. */
  errors: number;
  /** Retries spent by the pool in the window (when the retry happened). */
  retries: number;
  /** Calls started in the window that succeeded, per second. */
  opsPerSec: number;
  /** Latency percentiles of the successful calls started in the window, ms (null: none). */
  p50: number | null;
  p99: number | null;
  max: number | null;
  /** The slowest call started in the window, failed or not, ms (null: none started). */
  worst?: number | null;
  /** Breaker state of each endpoint at the end of the window, by endpoint name. */
  endpoints: Record<string, EndpointBand>;
  /** Routing and connections of each database endpoint at the end of the window. */
  endpointState?: Record<string, EndpointState>;
  /** The node the pool sends writes to (after a failover: the promoted one). */
  primaryNode?: string | null;
  /** Name of the fault active at the end of the window, if any. */
  fault: string | null;
}

/** One fault of the schedule, as it was played. */
export interface FaultWindow {
  /** Scenario name, e.g. 'replica-kill'. */
  name: string;
  /** Human description, e.g. 'SIGKILL replica-1, restart after 3 s'. */
  description: string;
  /** Node or component hit, e.g. 'replica-1', 'primary', 'redis'. */
  target: string;
  /** The pool endpoint whose breaker and calls show the fault ('primary' for the write path). */
  endpoint?: string;
  /** Which errors the scenario is expected to surface, and why. */
  expected?: string;
  /** When the fault was injected and healed, ms since start. */
  start: number;
  end: number;
  /** A promotion's end, ms since start (planned switchover and failover). */
  promotedAt?: number;
  /**
   * When the server the fault took down was down (its processes exited), ms since start: the
   * old primary of a planned switchover or failover.
   */
  downAt?: number;
}

/** One call, in the summary: the worst one that overlapped a fault. */
export interface CallSummary {
  kind: 'read' | 'write' | 'overload';
  /** When it started, ms since the drill's start. */
  startedAt: number;
  latencyMs: number;
  ok: boolean;
  /** The error's code or class when it failed. */
  error: string | null;
}

/** The overload scenario's figures. */
export interface OverloadFigures {
  /** Reads the drill can serve at once (sum of the read endpoints' pool sizes). */
  permits: number;
  /** Unloaded latency of the overload statement (p99 of calls one at a time), ms. */
  unloadedP99Ms: number | null;
  /** Calls per second the read endpoints can serve, from `permits` and the unloaded p50. */
  capacityPerSec: number;
  /** Calls per second offered (twice the capacity), open loop. */
  offeredPerSec: number;
  /** Calls not offered because the generator's outstanding-call bound was reached. */
  notSent: number;
  admitted: number;
  /** Calls refused before reaching the database (queue full, circuit open, ...). */
  refused: number;
  /** Calls that failed otherwise (a timeout in the queue, ...). */
  failed: number;
  admittedP99Ms: number | null;
  refusalP99Ms: number | null;
  /** Errors of the overload calls, by code. */
  errorsByCode: Record<string, number>;
  /** Overload calls admitted per second of the fault window (what got through). */
  admittedPerSec?: number;
  /**
   * The lowest gate limit each endpoint had in the samples of the fault window: below the pool
   * size only with `queue.adaptiveLimit` (absent in reports of older drills).
   */
  lowestLimit?: Record<string, number>;
  /**
   * Writes of the steady workload that failed and overlapped the fault, by code: a read burst
   * must not take the primary's slots, so any E_QUEUE_FULL here is reads spilling onto it.
   */
  writeErrorsByCode?: Record<string, number>;
}

/** The replica-lag scenario's figures. */
export interface LagFigures {
  /** The pool's bound, `routing.maxLagMs`. */
  boundMs: number;
  /** Highest lag the health monitor reported for the target, ms. */
  maxLagMs: number | null;
  /** From the pause to the first sample in which the target was held back, ms. */
  heldBackAfterMs: number | null;
  /** Calls the target took while it was shown held back. */
  callsWhileHeldBack: number;
}

/** One of issue 12's bars, checked for one fault; a goal for the library, not an invariant. */
export interface TargetCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** Per-fault outcome, one row of the summary table. */
export interface FaultSummary {
  name: string;
  target: string;
  /** From injection to the first sign the pool noticed (breaker open / endpoint avoided), ms. */
  timeToDetectMs: number | null;
  /**
   * Failed calls that overlapped the fault or its recovery: started before recovery and ended
   * after the injection.
   */
  errorsSurfaced: number;
  /** The same errors by code (or class). */
  errorsByCode?: Record<string, number>;
  /** Retries spent between injection and recovery. */
  retries: number;
  /** p99 latency of successful calls started before the first fault (baseline), ms. */
  p99BaselineMs: number | null;
  /** p99 latency of successful calls started between injection and heal, ms. */
  p99DuringMs: number | null;
  /** p99 of successful reads started in the 3 s before the injection, and during the fault. */
  readP99BeforeMs?: number | null;
  readP99DuringMs?: number | null;
  /** Errors of reads that overlapped the fault or its recovery. */
  readErrors?: number;
  /** The slowest call (failed or not) that overlapped the fault window. */
  worstCall?: CallSummary | null;
  /**
   * Write calls in flight at the moment of the injection, or, for a fault that takes a server
   * down (`downAt`), at some moment until it was down: a SIGKILL takes some milliseconds to end
   * the server's processes and close their sockets, and a write sent meanwhile went to a dying
   * server, on a connection the pool could not yet know was lost. An upper bound on the writes on
   * the wire then (some may still have been waiting for a connection).
   */
  writesInFlightAtFault?: number;
  /** After a promotion: from its end to the first write acknowledged by the new primary, ms. */
  writesFlowingAfterMs?: number | null;
  /** The node writes went to once the fault was over. */
  primaryNodeAfter?: string | null;
  /**
   * Connection attempts started per wrapped pool in the first second after the heal, or after
   * the action of a one-off fault (a reset, a termination), failed ones included. With the pools'
   * `max` to compare them with.
   */
  connectsAfterRecovery?: Record<string, number>;
  poolMax?: number;
  overload?: OverloadFigures;
  lag?: LagFigures;
  /** Issue 12's bars that apply to this fault. */
  targets?: TargetCheck[];
  /** From healing to throughput and breaker states back to normal, ms; null if it never did. */
  timeToRecoverMs: number | null;
}

/** One `routing` event of the pool, time-stamped. */
export interface RoutingChangeRecord {
  /** ms since the drill's start. */
  t: number;
  endpoint: string;
  state: 'routed' | 'ejected' | 'slow-start' | 'panic';
  previous: 'routed' | 'ejected' | 'slow-start' | 'panic';
  /** Why it is out of routing (or in panic); null when routed. */
  reason: string | null;
}

export interface InvariantResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DrillReport {
  /** ISO timestamp of the start. */
  startedAt: string;
  durationMs: number;
  seed: number;
  /** What ran: cluster shape, concurrency, scenarios. */
  config: {
    replicas: number;
    concurrency: number;
    scenarios: string[];
    external: boolean;
    /** Callers that only read and callers that only write (independent of each other). */
    readers?: number;
    writers?: number;
    /** Whether the pool had a Redis read cache. */
    redis?: boolean;
    /** Scenarios asked for but not played, with the reason. */
    skipped?: string[];
    /**
     * The pool's queue settings (`queue` of ResilientPoolOptions) as the drill ran them: its
     * own (see drillQueue in targets.ts), with any `pool` option over them.
     */
    queue?: {
      maxWaiting: number;
      acquireTimeout: number;
      /** `queue.maxQueueDelayMs`: 0 when the queue is bounded by its length only. */
      maxQueueDelayMs: number;
      /** `queue.adaptiveLimit`: false when off, 'gradient2' or 'vegas' when on. */
      adaptiveLimit: false | 'gradient2' | 'vegas';
    };
  };
  /** Endpoint names in display order (primary first). */
  endpoints: string[];
  samples: DrillSample[];
  faults: FaultWindow[];
  /**
   * The pool's `routing` events: an endpoint's routing state changed (ejected as an outlier,
   * panic, slow start after an outage, back to routed). Absent in reports of older drills.
   */
  routingChanges?: RoutingChangeRecord[];
  summary: FaultSummary[];
  invariants: InvariantResult[];
  totals: { ok: number; errors: number; retries: number; writesAcknowledged: number };
}
