/**
 * Everything the drill measures, time-stamped in ms since the drill's start: each call's
 * latency and outcome, retries, breaker changes, and the per-second samples drawn from them.
 */
import type { ResilientPool } from '../index.js';
import type { DrillSample, EndpointBand } from './report-model.js';
import type { CallOutcome } from './workload.js';

/** Nearest-rank percentile of an ascending array; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

const round = (ms: number | null) => (ms === null ? null : Math.round(ms * 100) / 100);

export interface BreakerChange {
  t: number;
  endpoint: string;
  state: EndpointBand;
}

export class Recorder {
  private readonly origin = performance.now();
  /** Completed successful calls: [time, latency]. */
  readonly successes: Array<[number, number]> = [];
  readonly errorTimes: number[] = [];
  readonly retryTimes: number[] = [];
  readonly breakerChanges: BreakerChange[] = [];
  readonly samples: DrillSample[] = [];
  readonly errorsByKind = new Map<string, number>();
  /** The fault in force, shown in samples and the status line. */
  fault: string | null = null;
  private windowStart = 0;
  private windowLatencies: number[] = [];
  private windowErrors = 0;
  private windowRetries = 0;

  constructor(private readonly db: ResilientPool) {
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
  }

  /** ms since the drill started. */
  now(): number {
    return performance.now() - this.origin;
  }

  record(outcome: CallOutcome): void {
    const t = this.now();
    if (outcome.ok) {
      this.successes.push([t, outcome.latencyMs]);
      this.windowLatencies.push(outcome.latencyMs);
    } else {
      this.errorTimes.push(t);
      this.windowErrors++;
      const key = `${outcome.kind} ${outcome.error ?? 'error'}`;
      this.errorsByKind.set(key, (this.errorsByKind.get(key) ?? 0) + 1);
    }
  }

  /** Closes the current window into a sample. */
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
      fault: this.fault,
    };
    this.samples.push(sample);
    this.windowStart = t;
    this.windowLatencies = [];
    this.windowErrors = 0;
    this.windowRetries = 0;
    return sample;
  }

  /** Latencies of successful calls completed in [from, to). */
  latenciesBetween(from: number, to: number): number[] {
    return this.successes
      .filter(([t]) => t >= from && t < to)
      .map(([, ms]) => ms)
      .sort((a, b) => a - b);
  }

  countBetween(times: readonly number[], from: number, to: number): number {
    return times.filter((t) => t >= from && t < to).length;
  }
}

/** One status line per sample, readable in a terminal and in CI logs. */
export function statusLine(sample: DrillSample): string {
  const ms = (v: number | null) => (v === null ? '   -  ' : `${v.toFixed(1).padStart(5)}ms`);
  const states = Object.entries(sample.endpoints)
    .map(([name, state]) => `${name}:${state === 'closed' ? 'ok' : state.toUpperCase()}`)
    .join(' ');
  const secs = `${Math.round(sample.t / 1000)}s`.padStart(4);
  return (
    `[${secs}] ops/s ${String(sample.opsPerSec).padStart(5)}  p50 ${ms(sample.p50)}  p99 ${ms(sample.p99)}` +
    `  errors ${String(sample.errors).padStart(3)}  retries ${String(sample.retries).padStart(3)}` +
    `  | ${states}${sample.fault ? `  | fault: ${sample.fault}` : ''}`
  );
}
