/**
 * The public option types of OpenTelemetry metrics and traces (docs/observability.md). Both go
 * through `@opentelemetry/api` only, an optional peer dependency: the SDK, its readers and
 * exporters are the application's choice.
 */
import type { MeterProviderLike, TracerProviderLike } from '../telemetry/otel/api-types.js';

/**
 * OpenTelemetry metrics: the connection-pool instruments of the database semantic conventions
 * per endpoint (`db.client.connection.*`), `db.client.operation.duration`, and the pool's own
 * (`resilient_pool.*`: breakers, retries, rejections, ejections, failovers, lag, cache). With
 * metrics on, a call records one histogram point (plus the connection's wait and use times);
 * everything else is observed from `stats()` once per collection.
 */
export interface MetricsOptions {
  /**
   * Where the instruments come from. Register the SDK's provider before creating the pool: a
   * meter taken from the global provider before any is registered stays a no-op.
   * @default the global provider of `@opentelemetry/api` (`metrics.getMeterProvider()`)
   */
  meterProvider?: MeterProviderLike;
}

/**
 * OpenTelemetry traces: one CLIENT span per call (`SELECT`, `INSERT`, ..., or
 * `resilient-pool.connect` for a checkout), a child of the active context, with the endpoint
 * that answered, the attempt count, and each retry and fail-over as span events. Spans that pg's
 * own instrumentation starts while the call runs are its children.
 */
export interface TracingOptions {
  /**
   * Where the tracer comes from.
   * @default the global provider of `@opentelemetry/api` (`trace.getTracerProvider()`)
   */
  tracerProvider?: TracerProviderLike;
  /**
   * Put the statement's text on the span as `db.query.text`. Off by default: a text can carry a
   * secret written into it (parameter values never go on a span, whatever this says).
   * @default false
   */
  queryText?: boolean;
}
