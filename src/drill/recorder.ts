/**
 * Everything the drill measures, time-stamped in ms since the drill's start: every call (when it
 * started and ended, and how), retries, breaker changes, routing events (down, up, eject, readmit,
 * and the pool's `routing` state changes), new connections, and
 * once a second a snapshot of each endpoint's routing and connections.
 *
 * The live status line counts calls as they complete (that is all it can know at the time); the
 * report's samples are rebuilt at the end with each call in the second it started
 * (`finalSamples`).
 */
import type { EndpointStats, ResilientPool } from '../index.js';
import { type CallKind, type CallRecord, figuresByWindow, percentile } from './calls.js';
import type {
  DrillSample,
  EndpointBand,
  EndpointState,
  RoutingBand,
  RoutingChangeRecord,
} from './report-model.js';

export { percentile } from './calls.js';

const round = (ms: number | null) => (ms === null ? null : Math.round(ms * 100) / 100);

export interface BreakerChange {
  t: number;
  endpoint: string;
  state: EndpointBand;
}

/** A routing event of the pool: an endpoint declared down or up, ejected or re-admitted. */
export interface RoutingEvent {
  t: number;
  endpoint: string;
  event: 'down' | 'up' | 'eject' | 'readmit';
}

/** How the recorder finds what stats() does not carry. */
export interface RecorderWiring {
  /**
   * Callers waiting inside the pg pools an endpoint wraps (pg-pool's `waitingCount`), for
   * endpoint stats that have no `pending` of their own.
   */
  poolWaiting(endpoint: string): number;
  /** The pool's `max` of an endpoint's wrapped pool, for stats without `maxConnections`. */
  poolMax(endpoint: string): number | null;
  /** The node a primary candidate stands for ('node:replica-1' -> 'replica-1'). */
  nodeOfCandidate(candidate: string): string;
  /** The node writes go to at the start. */
  initialPrimaryNode: string;
  /**
   * Subscribes to connection attempts of the wrapped pools, as they start: a replica's by its
   * endpoint name, each primary candidate's own pool as 'primary@<node>'. The primary endpoint
   * forwards to the candidates, discovery's probes of the other candidates included; counted per
   * candidate, each is held to its own pool's max.
   */
  onConnectAttempt(listener: (pool: string) => void): void;
}

/** The fields of EndpointStats the drill reads that older versions of the library lack. */
type NewerEndpointStats = Omit<EndpointStats, 'limit' | 'routing'> & {
  pending?: number;
  maxConnections?: number;
  limit?: number;
  routing?: EndpointStats['routing'];
};

export class Recorder {
  private readonly origin = performance.now();
  /** Every call of the workload and of the overload burst, as it completed. */
  readonly calls: CallRecord[] = [];
  readonly retryTimes: number[] = [];
  readonly breakerChanges: BreakerChange[] = [];
  readonly routingEvents: RoutingEvent[] = [];
  /** The pool's `routing` events (routing state changes: outliers, panic, slow start). */
  readonly routingChanges: RoutingChangeRecord[] = [];
  /**
   * Connection attempts of the wrapped pools, when each started, by endpoint; the primary's by
   * candidate, as 'primary@<node>'.
   */
  readonly connects: Array<{ t: number; endpoint: string }> = [];
  /** Writes moved to another node ('failover' events). */
  readonly failovers: Array<{ t: number; node: string }> = [];
  /** One per second, as seen live. */
  readonly samples: DrillSample[] = [];
  /** The fault in force, shown in samples and the status line. */
  fault: string | null = null;
  /** The node writes go to, from the last 'failover' event. */
  primaryNode: string;
  private windowStart = 0;
  private windowLatencies: number[] = [];
  private windowErrors = 0;
  private windowRetries = 0;
  private readonly startedInWindow: Record<CallKind, number> = { read: 0, write: 0, overload: 0 };
  /** Calls started since the drill began, by kind. */
  readonly started: Record<CallKind, number> = { read: 0, write: 0, overload: 0 };
  private readonly previousCalls = new Map<string, number>();

  constructor(
    private readonly db: ResilientPool,
    private readonly wiring: RecorderWiring,
  ) {
    this.primaryNode = wiring.initialPrimaryNode;
    db.on('retry', () => {
      this.retryTimes.push(this.now());
      this.windowRetries++;
    });
    db.on('breaker', (e) => {
      this.breakerChanges.push({ t: this.now(), endpoint: e.endpoint, state: e.state });
    });
    db.on('cacheBreaker', (e) => {
      this.breakerChanges.push({ t: this.now(), endpoint: 'redis', state: e.state });
    });
    for (const event of ['down', 'up', 'eject', 'readmit'] as const) {
      db.on(event, (e: { endpoint: string }) => {
        this.routingEvents.push({ t: this.now(), endpoint: e.endpoint, event });
      });
    }
    db.on('routing', (e) => {
      this.routingChanges.push({ t: Math.round(this.now()), ...e });
    });
    wiring.onConnectAttempt((endpoint) => {
      this.connects.push({ t: this.now(), endpoint });
    });
    db.on('failover', (e) => {
      this.primaryNode = wiring.nodeOfCandidate(e.to);
      this.failovers.push({ t: this.now(), node: this.primaryNode });
    });
    for (const e of db.stats().endpoints) this.previousCalls.set(e.name, e.calls);
  }

  /** ms since the drill started. */
  now(): number {
    return performance.now() - this.origin;
  }

  /** A call of `kind` starts now; returns its start time, to give back to `finish`. */
  begin(kind: CallKind): number {
    this.startedInWindow[kind]++;
    this.started[kind]++;
    return this.now();
  }

  /** A call that began at `start` completed. */
  finish(kind: CallKind, start: number, outcome: { error?: string; refused?: boolean } = {}): void {
    const end = this.now();
    const ok = outcome.error === undefined;
    this.calls.push({
      kind,
      start,
      end,
      ok,
      ...(ok ? {} : { error: outcome.error }),
      ...(outcome.refused ? { refused: true } : {}),
    });
    if (kind === 'overload') return;
    if (ok) this.windowLatencies.push(end - start);
    else this.windowErrors++;
  }

  /** Closes the current second into a live sample (completions, and the endpoints' state). */
  sample(): DrillSample {
    const t = this.now();
    const latencies = this.windowLatencies.sort((a, b) => a - b);
    const seconds = Math.max(0.001, (t - this.windowStart) / 1000);
    const endpoints: Record<string, EndpointBand> = {};
    const stats = this.db.stats();
    for (const e of stats.endpoints) endpoints[e.name] = e.breaker;
    if (stats.cache !== undefined) endpoints.redis = stats.cache.breaker;
    const sample: DrillSample = {
      t: Math.round(t),
      ok: latencies.length,
      errors: this.windowErrors,
      retries: this.windowRetries,
      opsPerSec: Math.round(latencies.length / seconds),
      p50: round(percentile(latencies, 50)),
      p99: round(percentile(latencies, 99)),
      max: round(latencies.at(-1) ?? null),
      endpoints,
      endpointState: this.endpointStates(stats.endpoints),
      primaryNode: this.primaryNode,
      fault: this.fault,
    };
    this.samples.push(sample);
    this.windowStart = t;
    this.windowLatencies = [];
    this.windowErrors = 0;
    this.windowRetries = 0;
    this.startedInWindow.read = 0;
    this.startedInWindow.write = 0;
    this.startedInWindow.overload = 0;
    return sample;
  }

  private endpointStates(list: readonly EndpointStats[]): Record<string, EndpointState> {
    const delta = new Map<string, number>();
    for (const e of list) {
      delta.set(e.name, e.calls - (this.previousCalls.get(e.name) ?? 0));
      this.previousCalls.set(e.name, e.calls);
    }
    const readsAsked = this.startedInWindow.read + this.startedInWindow.overload > 0;
    const writesAsked = this.startedInWindow.write > 0;
    const replicaCalls = list
      .filter((e) => e.role === 'replica')
      .reduce((n, e) => n + delta.get(e.name)!, 0);
    const states: Record<string, EndpointState> = {};
    for (const e of list as readonly NewerEndpointStats[]) {
      const calls = delta.get(e.name)!;
      const asked = e.role === 'primary' ? writesAsked : readsAsked;
      states[e.name] = {
        routing: routingBand(e, calls, {
          asked,
          othersServed: e.role === 'replica' ? replicaCalls - calls > 0 : false,
        }),
        pending: e.pending ?? e.queued + this.wiring.poolWaiting(e.name),
        idle: e.idle,
        used: e.inUse,
        max: e.maxConnections ?? this.wiring.poolMax(e.name),
        calls,
        lagMs: e.role === 'replica' ? e.lagMs : null,
        ...(e.limit === undefined ? {} : { limit: e.limit }),
      };
    }
    return states;
  }

  /** The samples with each call in the second it started in (steady workload only). */
  finalSamples(): DrillSample[] {
    const steady = this.calls.filter((c) => c.kind !== 'overload');
    const figures = figuresByWindow(
      steady,
      this.samples.map((s) => s.t),
    );
    return this.samples.map((s, i) => ({ ...s, ...figures[i]! }));
  }

  countBetween(times: readonly number[], from: number, to: number): number {
    return times.filter((t) => t >= from && t < to).length;
  }
}

/** What routing did with an endpoint in a window; see {@link RoutingBand}. */
export function routingBand(
  e: Pick<EndpointStats, 'down' | 'health' | 'breaker' | 'role'> & {
    routing?: EndpointStats['routing'];
  },
  calls: number,
  context: { asked: boolean; othersServed: boolean },
): RoutingBand {
  if (e.down) return 'down';
  if (e.health === 'ejected') return 'ejected';
  if (e.health === 'lagging') return 'lagging';
  // Out of routing with its circuit closed and its probes fine: ejected as an outlier.
  if (e.routing === 'ejected' && e.breaker === 'closed') return 'ejected';
  if (calls > 0) return 'serving';
  if (e.breaker === 'open' || context.othersServed || (e.role === 'primary' && context.asked)) {
    return 'avoided';
  }
  return 'idle';
}

/** An endpoint in the status line: its breaker when not closed, else its routing, else ok. */
function endpointWord(name: string, sample: DrillSample): string {
  const breaker = sample.endpoints[name];
  const state = sample.endpointState?.[name];
  const parts: string[] = [];
  if (breaker !== undefined && breaker !== 'closed') parts.push(breaker.toUpperCase());
  if (state !== undefined && state.routing !== 'serving' && state.routing !== 'idle') {
    parts.push(
      state.routing === 'lagging' && state.lagMs !== null
        ? `lagging ${(state.lagMs / 1000).toFixed(1)}s`
        : state.routing,
    );
  }
  return parts.length > 0 ? parts.join(',') : 'ok';
}

/** One status line per sample, readable in a terminal and in CI logs. */
export function statusLine(sample: DrillSample): string {
  const ms = (v: number | null) => (v === null ? '   -  ' : `${v.toFixed(1).padStart(5)}ms`);
  const states = Object.keys(sample.endpoints)
    .map((name) => {
      const label =
        name === 'primary' && sample.primaryNode && sample.primaryNode !== 'primary'
          ? `primary(${sample.primaryNode})`
          : name;
      return `${label}:${endpointWord(name, sample)}`;
    })
    .join(' ');
  const pending = Object.values(sample.endpointState ?? {}).reduce((n, e) => n + e.pending, 0);
  const secs = `${Math.round(sample.t / 1000)}s`.padStart(4);
  return (
    `[${secs}] ops/s ${String(sample.opsPerSec).padStart(5)}  p50 ${ms(sample.p50)}  p99 ${ms(sample.p99)}` +
    `  errors ${String(sample.errors).padStart(3)}  retries ${String(sample.retries).padStart(3)}` +
    `  pending ${String(pending).padStart(3)}  | ${states}${sample.fault ? `  | fault: ${sample.fault}` : ''}`
  );
}
