/**
 * The real OpenTelemetry SDK for integration tests: a MeterProvider whose reader collects when
 * the test asks (as a Prometheus scrape would), and helpers to find a data point by metric name
 * and attributes; a tracer provider that keeps finished spans in memory.
 */

import {
  DataPointType,
  MeterProvider,
  type MetricData,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** A reader with no timer and no exporter: `collect()` is the only collection. */
class OnDemandReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

export interface SdkMetrics {
  meterProvider: MeterProvider;
  /** One collection: every metric, every data point. */
  collect(): Promise<MetricData[]>;
  shutdown(): Promise<void>;
}

export function sdkMetrics(): SdkMetrics {
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    meterProvider,
    collect: async () => {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) throw errors[0];
      return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    },
    shutdown: () => meterProvider.shutdown(),
  };
}

/** A data point: its attributes and its number (a histogram's count). */
export interface Point {
  attributes: Record<string, unknown>;
  value: number;
}

/** The points of metric `name` whose attributes include `match`. */
export function pointsOf(
  metrics: readonly MetricData[],
  name: string,
  match: Record<string, unknown> = {},
): Point[] {
  return metrics
    .filter((m) => m.descriptor.name === name)
    .flatMap((m) =>
      m.dataPoints.map((d) => ({
        attributes: d.attributes as Record<string, unknown>,
        value:
          m.dataPointType === DataPointType.HISTOGRAM
            ? (d.value as { count: number }).count
            : (d.value as number),
      })),
    )
    .filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v));
}

/** The sum of the matching points' values (0 when none match). */
export function sumOf(
  metrics: readonly MetricData[],
  name: string,
  match: Record<string, unknown> = {},
): number {
  return pointsOf(metrics, name, match).reduce((s, p) => s + p.value, 0);
}

/** The one matching point's value; throws unless exactly one matches. */
export function onlyValue(
  metrics: readonly MetricData[],
  name: string,
  match: Record<string, unknown>,
): number {
  const points = pointsOf(metrics, name, match);
  if (points.length !== 1) {
    throw new Error(`${points.length} points of ${name} match ${JSON.stringify(match)}`);
  }
  return points[0]?.value as number;
}

export interface SdkTracing {
  tracerProvider: BasicTracerProvider;
  exporter: InMemorySpanExporter;
  shutdown(): Promise<void>;
}

export function sdkTracing(): SdkTracing {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return { tracerProvider, exporter, shutdown: () => tracerProvider.shutdown() };
}
