/**
 * The telemetry of one pool, composed from its resolved options: the call observer (metrics,
 * spans, the query tracing channel), the connection timings (metrics only), the event channels,
 * and what to undo at `end()`. The pool holds what this returns and passes each part where it is
 * used; with metrics and tracing off, a call pays only `calls.active` (false until someone
 * subscribes to `resilient-pool:query`).
 */
import type { ResolvedMetrics, ResolvedTracing } from '../options/resolved.js';
import { CallObserver } from './call-observer.js';
import { diagnosticsEvents, type TelemetryEvents } from './diagnostics.js';
import type { CallTelemetry, ConnectionTimings } from './observer.js';
import { PoolMetrics } from './otel/metrics.js';
import { CallTracer } from './otel/tracing.js';
import type { TelemetrySource } from './telemetry-source.js';

/** The instrumentation scope of the pool's meter and tracer. */
export const INSTRUMENTATION_SCOPE = 'resilient-pool';

export interface Telemetry {
  /**
   * Observes calls. Always present: a subscriber to the query channel may come at any time, and
   * `active` says whether anything observes a call right now.
   */
  calls: CallTelemetry | undefined;
  /** For each endpoint's `timings`: set only while metrics are on. */
  timings: ConnectionTimings | undefined;
  /** The diagnostics_channel publications of the pool's events. */
  events: TelemetryEvents;
  /** Unregisters the observable instruments' callback (at `end()`); idempotent. */
  shutdown(): void;
}

export function createTelemetry(
  options: { metrics: ResolvedMetrics | undefined; tracing: ResolvedTracing | undefined },
  source: TelemetrySource,
): Telemetry {
  const metrics =
    options.metrics === undefined
      ? undefined
      : new PoolMetrics(options.metrics.meterProvider.getMeter(INSTRUMENTATION_SCOPE), source);
  const tracer = options.tracing === undefined ? undefined : new CallTracer(options.tracing);
  return {
    calls: new CallObserver(metrics, tracer, source.logger),
    timings: metrics,
    events: diagnosticsEvents,
    shutdown: () => metrics?.shutdown(),
  };
}
