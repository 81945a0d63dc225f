/**
 * The parts of the OpenTelemetry API (`@opentelemetry/api` 1.x) this library uses, as structural
 * types: the published .d.ts then needs no `@opentelemetry/api` to type-check, and a provider
 * from any 1.x API or SDK (a `MeterProvider` of `@opentelemetry/sdk-metrics`, the global one, a
 * test double) is accepted as it is. Only the members called here are named.
 */

/** Attribute values as OpenTelemetry takes them (no nested objects). */
export type OtelAttributeValue = string | number | boolean;
export type OtelAttributes = Readonly<Record<string, OtelAttributeValue | undefined>>;

/** Options of an instrument: what a backend shows next to it, and advice on aggregation. */
export interface OtelInstrumentOptions {
  description?: string;
  unit?: string;
  /** 0: INT, 1: DOUBLE (the API's ValueType). */
  valueType?: number;
  advice?: { explicitBucketBoundaries?: number[] };
}

export interface OtelHistogram {
  record(value: number, attributes?: OtelAttributes): void;
}

export interface OtelCounter {
  add(value: number, attributes?: OtelAttributes): void;
}

/** An asynchronous instrument: observed in a batch callback, never called per query. */
// biome-ignore lint/suspicious/noEmptyInterface: an opaque handle; the API gives it no members we use
export interface OtelObservable {}

export interface OtelBatchObservableResult {
  observe(observable: OtelObservable, value: number, attributes?: OtelAttributes): void;
}

export type OtelBatchObservableCallback = (
  result: OtelBatchObservableResult,
) => void | Promise<void>;

/** The API's `Meter`, as far as the pool's metrics use it. */
export interface MeterLike {
  createHistogram(name: string, options?: OtelInstrumentOptions): OtelHistogram;
  createCounter(name: string, options?: OtelInstrumentOptions): OtelCounter;
  createObservableGauge(name: string, options?: OtelInstrumentOptions): OtelObservable;
  createObservableCounter(name: string, options?: OtelInstrumentOptions): OtelObservable;
  createObservableUpDownCounter(name: string, options?: OtelInstrumentOptions): OtelObservable;
  addBatchObservableCallback(
    callback: OtelBatchObservableCallback,
    observables: OtelObservable[],
  ): void;
  removeBatchObservableCallback(
    callback: OtelBatchObservableCallback,
    observables: OtelObservable[],
  ): void;
}

/**
 * A source of meters: the `MeterProvider` of `@opentelemetry/sdk-metrics`, or the global one
 * (`metrics.getMeterProvider()` of `@opentelemetry/api`).
 */
export interface MeterProviderLike {
  getMeter(name: string, version?: string, options?: { schemaUrl?: string }): MeterLike;
}

/** An OpenTelemetry context: opaque here, passed between the API's calls. */
// biome-ignore lint/suspicious/noEmptyInterface: opaque; only the API reads it
export interface OtelContext {}

export interface OtelSpanOptions {
  /** 2: CLIENT (the API's SpanKind). */
  kind?: number;
  attributes?: OtelAttributes;
}

/** The API's `Span`, as far as the pool's spans use it. */
export interface SpanLike {
  setAttribute(key: string, value: OtelAttributeValue): unknown;
  addEvent(name: string, attributes?: OtelAttributes): unknown;
  /** code 2: ERROR (the API's SpanStatusCode). */
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
  isRecording(): boolean;
}

export interface TracerLike {
  startSpan(name: string, options?: OtelSpanOptions, context?: OtelContext): SpanLike;
}

/**
 * A source of tracers: the `BasicTracerProvider` or `NodeTracerProvider` of the SDK, or the
 * global one (`trace.getTracerProvider()` of `@opentelemetry/api`).
 */
export interface TracerProviderLike {
  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): TracerLike;
}

/** The API module itself, as far as this library calls it (loaded lazily; see load-api.ts). */
export interface OtelApi {
  metrics: { getMeterProvider(): MeterProviderLike };
  trace: {
    getTracerProvider(): TracerProviderLike;
    setSpan(context: OtelContext, span: SpanLike): OtelContext;
  };
  context: {
    active(): OtelContext;
    with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
      context: OtelContext,
      fn: F,
      thisArg?: ThisParameterType<F>,
      ...args: A
    ): ReturnType<F>;
  };
}
