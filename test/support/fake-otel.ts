/**
 * In-memory stand-ins for an OpenTelemetry MeterProvider and TracerProvider, for unit tests of
 * the instruments and spans: every instrument created, every synchronous point, every batch
 * callback (run by `collect()`), every span with its attributes, events, status and parent.
 * Typed by the library's structural API types, so they also check that those stay callable.
 */
import type {
  MeterLike,
  MeterProviderLike,
  OtelAttributes,
  OtelBatchObservableCallback,
  OtelContext,
  OtelInstrumentOptions,
  OtelObservable,
  OtelSpanOptions,
  SpanLike,
  TracerLike,
  TracerProviderLike,
} from '../../src/telemetry/otel/api-types.js';

export interface FakeInstrument {
  kind: 'histogram' | 'counter' | 'gauge' | 'observable-counter' | 'observable-updown';
  name: string;
  options: OtelInstrumentOptions | undefined;
}

export interface FakePoint {
  name: string;
  value: number;
  attributes: OtelAttributes;
}

export class FakeMeter implements MeterLike {
  readonly instruments: FakeInstrument[] = [];
  /** Synchronous points (histogram records, counter adds), in order. */
  readonly points: FakePoint[] = [];
  readonly callbacks = new Set<OtelBatchObservableCallback>();

  private make(kind: FakeInstrument['kind'], name: string, options?: OtelInstrumentOptions) {
    const instrument: FakeInstrument = { kind, name, options };
    this.instruments.push(instrument);
    return instrument;
  }

  createHistogram(name: string, options?: OtelInstrumentOptions) {
    this.make('histogram', name, options);
    return {
      record: (value: number, attributes: OtelAttributes = {}) =>
        this.points.push({ name, value, attributes }),
    };
  }

  createCounter(name: string, options?: OtelInstrumentOptions) {
    this.make('counter', name, options);
    return {
      add: (value: number, attributes: OtelAttributes = {}) =>
        this.points.push({ name, value, attributes }),
    };
  }

  createObservableGauge(name: string, options?: OtelInstrumentOptions): OtelObservable {
    return this.make('gauge', name, options);
  }

  createObservableCounter(name: string, options?: OtelInstrumentOptions): OtelObservable {
    return this.make('observable-counter', name, options);
  }

  createObservableUpDownCounter(name: string, options?: OtelInstrumentOptions): OtelObservable {
    return this.make('observable-updown', name, options);
  }

  addBatchObservableCallback(callback: OtelBatchObservableCallback): void {
    this.callbacks.add(callback);
  }

  removeBatchObservableCallback(callback: OtelBatchObservableCallback): void {
    this.callbacks.delete(callback);
  }

  /** Runs every batch callback once, as a reader's collection does; returns what they observed. */
  collect(): FakePoint[] {
    const observed: FakePoint[] = [];
    for (const callback of this.callbacks) {
      void callback({
        observe: (observable, value, attributes = {}) =>
          observed.push({ name: (observable as FakeInstrument).name, value, attributes }),
      });
    }
    return observed;
  }
}

export class FakeMeterProvider implements MeterProviderLike {
  readonly meters: Array<{ name: string; meter: FakeMeter }> = [];

  getMeter(name: string): FakeMeter {
    const meter = new FakeMeter();
    this.meters.push({ name, meter });
    return meter;
  }

  /** The one meter taken (tests make one pool per provider). */
  get meter(): FakeMeter {
    const only = this.meters[0];
    if (only === undefined || this.meters.length > 1) {
      throw new Error(`expected one meter, got ${this.meters.length}`);
    }
    return only.meter;
  }
}

export class FakeSpan implements SpanLike {
  readonly attributes: Record<string, unknown>;
  readonly events: Array<{ name: string; attributes: OtelAttributes | undefined }> = [];
  status: { code: number; message?: string } | undefined;
  ended = 0;

  constructor(
    readonly name: string,
    readonly options: OtelSpanOptions | undefined,
    readonly parent: OtelContext | undefined,
  ) {
    this.attributes = { ...options?.attributes };
  }

  setAttribute(key: string, value: unknown): this {
    this.attributes[key] = value;
    return this;
  }

  addEvent(name: string, attributes?: OtelAttributes): this {
    this.events.push({ name, attributes });
    return this;
  }

  setStatus(status: { code: number; message?: string }): this {
    this.status = status;
    return this;
  }

  end(): void {
    this.ended++;
  }

  isRecording(): boolean {
    return this.ended === 0;
  }
}

export class FakeTracerProvider implements TracerProviderLike {
  readonly spans: FakeSpan[] = [];

  getTracer(): TracerLike {
    return {
      startSpan: (name, options, context) => {
        const span = new FakeSpan(name, options, context);
        this.spans.push(span);
        return span;
      },
    };
  }
}
