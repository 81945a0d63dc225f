/**
 * The data a drill produces: what the live status line, the summary table, `--json` and the
 * HTML report are all drawn from. Plain JSON-serialisable data; times are milliseconds since the
 * drill's start unless named otherwise.
 */

/** State of one endpoint as the drill saw it during one sample. */
export type EndpointBand = 'closed' | 'half-open' | 'open';

/** One second of the drill. */
export interface DrillSample {
  /** End of the sample window, ms since start. */
  t: number;
  /** Calls completed successfully in the window. */
  ok: number;
  /** Calls that surfaced an error to the caller in the window. */
  errors: number;
  /** Retries spent by the pool in the window. */
  retries: number;
  /** Successful calls per second over the window. */
  opsPerSec: number;
  /** Latency percentiles of calls completed in the window, ms (null when none completed). */
  p50: number | null;
  p99: number | null;
  max: number | null;
  /** Breaker state of each endpoint at the end of the window, by endpoint name. */
  endpoints: Record<string, EndpointBand>;
  /** Name of the fault active at the end of the window, if any. */
  fault: string | null;
}

/** One fault of the schedule, as it was played. */
export interface FaultWindow {
  /** Scenario name, e.g. 'replica-kill'. */
  name: string;
  /** Human description, e.g. 'SIGKILL replica-1, restart after 3 s'. */
  description: string;
  /** Endpoint or component hit, e.g. 'replica-1', 'primary', 'redis'. */
  target: string;
  /** When the fault was injected and healed, ms since start. */
  start: number;
  end: number;
}

/** Per-fault outcome, one row of the summary table. */
export interface FaultSummary {
  name: string;
  target: string;
  /** From injection to the first sign the pool noticed (breaker open / endpoint avoided), ms. */
  timeToDetectMs: number | null;
  /** Errors surfaced to callers between injection and recovery. */
  errorsSurfaced: number;
  /** Retries spent between injection and recovery. */
  retries: number;
  /** p99 latency before the fault (baseline) and during it, ms. */
  p99BaselineMs: number | null;
  p99DuringMs: number | null;
  /** From healing to throughput and breaker states back to normal, ms; null if it never did. */
  timeToRecoverMs: number | null;
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
  };
  /** Endpoint names in display order (primary first). */
  endpoints: string[];
  samples: DrillSample[];
  faults: FaultWindow[];
  summary: FaultSummary[];
  invariants: InvariantResult[];
  totals: { ok: number; errors: number; retries: number; writesAcknowledged: number };
}
