/**
 * The features that cost something per call when turned on, each as pool options for the bench:
 * OpenTelemetry metrics and tracing with the real SDK (a periodic reader and a batch span
 * processor, as a service would run them, exporting to nowhere), and the issue-12 features
 * (adaptive limit, failover buffering, consolidation, hedged reads). Case 2b measures each one's
 * in-process cost per call against the same pool with it off; case 1b measures metrics and
 * tracing against raw pg.Pool on the real server.
 */
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import type { ResilientPoolOptions } from '../src/index.js';

/** Extra pool options of a variant and what to undo when done with it. */
export interface VariantSetup {
  options: Partial<ResilientPoolOptions>;
  /** The call the variant measures: `query()` on the primary, or `read()` over replicas. */
  call: 'query' | 'read';
  shutdown(): Promise<void>;
}

export interface Variant {
  label: string;
  setup(): VariantSetup;
}

/** Spans exported to nowhere: what the SDK does per span, without an exporter's I/O. */
class DiscardingExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (result: { code: number }) => void): void {
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

/** The SDK as a service runs it for metrics: a periodic reader, exporting in memory. */
export function sdkMetrics(): { meterProvider: MeterProvider; shutdown(): Promise<void> } {
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 1_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  return { meterProvider, shutdown: () => meterProvider.shutdown() };
}

function sdkTracing(): { tracerProvider: BasicTracerProvider; shutdown(): Promise<void> } {
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(new DiscardingExporter())],
  });
  return { tracerProvider, shutdown: () => tracerProvider.shutdown() };
}

const none = async (): Promise<void> => {};

export const METRICS_ON: Variant = {
  label: 'metrics on (SDK, periodic reader)',
  setup() {
    const sdk = sdkMetrics();
    return {
      options: { metrics: { meterProvider: sdk.meterProvider } },
      call: 'query',
      shutdown: sdk.shutdown,
    };
  },
};

export const TRACING_ON: Variant = {
  label: 'tracing on (SDK, batch processor)',
  setup() {
    const sdk = sdkTracing();
    return {
      options: { tracing: { tracerProvider: sdk.tracerProvider } },
      call: 'query',
      shutdown: sdk.shutdown,
    };
  },
};

/** Every variant of case 2b, in the order printed. */
export const IN_PROCESS_VARIANTS: readonly Variant[] = [
  METRICS_ON,
  TRACING_ON,
  {
    label: 'adaptive limit on (gradient2)',
    setup: () => ({ options: { queue: { adaptiveLimit: true } }, call: 'query', shutdown: none }),
  },
  {
    label: 'failover buffering on (single primary, bufferMs 10 s)',
    setup: () => ({ options: { failover: { bufferMs: 10_000 } }, call: 'query', shutdown: none }),
  },
  {
    label: 'read(), consolidation on',
    setup: () => ({ options: { consolidation: true }, call: 'read', shutdown: none }),
  },
  {
    // The fake answers within microseconds, so no hedge is ever sent: what every read pays for
    // the race (its timer, a light abort signal, the race's state) when hedging is on.
    label: 'read(), hedging on (adaptive delay, no hedge sent)',
    setup: () => ({ options: { hedge: true }, call: 'read', shutdown: none }),
  },
];
