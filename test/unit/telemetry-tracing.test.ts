/**
 * The call observer with tracing: one CLIENT span per call named after its command, the
 * endpoint that answered and the attempt count on it, retries and moves to another endpoint as
 * events, the error as `error.type` and an ERROR status; the text only when opted in. Through the
 * real SDK, the span is a child of the active span and spans started while the call runs are its
 * children. And telemetry never breaks a call, whatever a provider does.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CircuitOpenError } from '../../src/errors.js';
import type { ResolvedTracing } from '../../src/options/resolved.js';
import { createTelemetry } from '../../src/telemetry/create-telemetry.js';
import type { CallStart, ObservedEndpoint } from '../../src/telemetry/observer.js';
import type { TracerProviderLike } from '../../src/telemetry/otel/api-types.js';
import type { TelemetrySource } from '../../src/telemetry/telemetry-source.js';
import { FakeMeterProvider, FakeTracerProvider } from '../support/fake-otel.js';

const r1: ObservedEndpoint = {
  name: 'replica-1',
  role: 'replica',
  attributes: { 'server.address': '127.0.0.1', 'server.port': 6001, 'db.namespace': 'app' },
};
const r2: ObservedEndpoint = {
  name: 'replica-2',
  role: 'replica',
  attributes: { 'server.address': '127.0.0.1', 'server.port': 6002, 'db.namespace': 'app' },
};

function source(warnings: unknown[] = []): TelemetrySource {
  return {
    stats: () => ({ endpoints: [], failovers: 0, retryBudgetExhausted: 0 }),
    logger: {
      error() {},
      warn: (obj) => warnings.push(obj),
      info() {},
      debug() {},
    },
  };
}

function tracing(tracerProvider: TracerProviderLike, queryText = false): ResolvedTracing {
  return { tracerProvider, queryText, api: { context, trace } };
}

const READ: CallStart = { kind: 'statement', role: 'read', text: 'SELECT $1::text AS v' };

/** A read that failed on r1 and was answered by r2, as the call path reports it. */
function failedOver(start: CallStart, provider: TracerProviderLike, queryText = false) {
  const telemetry = createTelemetry(
    { metrics: undefined, tracing: tracing(provider, queryText) },
    source(),
  );
  const observed = telemetry.calls?.begin(start);
  if (observed === undefined) throw new Error('no call telemetry');
  return observed.run(async () => {
    observed.attempt(r1);
    observed.retry({
      endpoint: r1,
      attempt: 2,
      delayMs: 0,
      reason: 'connection',
      error: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6001'), {
        code: 'ECONNREFUSED',
      }),
    });
    observed.attempt(r2);
    return 'answered';
  });
}

describe('call spans', () => {
  it('one CLIENT span for a read that moved replicas: two attempts, the answering endpoint', async () => {
    const provider = new FakeTracerProvider();
    expect(await failedOver(READ, provider)).toBe('answered');
    expect(provider.spans).toHaveLength(1);
    const [span] = provider.spans;
    expect(span?.name).toBe('SELECT');
    expect(span?.options?.kind).toBe(2);
    expect(span?.attributes).toEqual({
      'db.system.name': 'postgresql',
      'db.operation.name': 'SELECT',
      'resilient_pool.call.role': 'read',
      'db.namespace': 'app',
      'server.address': '127.0.0.1',
      'server.port': 6002,
      'resilient_pool.endpoint': 'replica-2',
      'resilient_pool.role': 'replica',
      'resilient_pool.attempts': 2,
    });
    expect(span?.events).toEqual([
      {
        name: 'resilient_pool.retry',
        attributes: {
          'resilient_pool.attempt': 2,
          'resilient_pool.endpoint': 'replica-1',
          'resilient_pool.retry.reason': 'connection',
          'resilient_pool.retry.delay_ms': 0,
          'error.type': 'ECONNREFUSED',
        },
      },
      {
        name: 'resilient_pool.failover',
        attributes: {
          'resilient_pool.attempt': 2,
          'resilient_pool.failover.from': 'replica-1',
          'resilient_pool.failover.to': 'replica-2',
        },
      },
    ]);
    expect(span?.status).toBeUndefined();
    expect(span?.ended).toBe(1);
  });

  it('puts the text on the span only when asked', async () => {
    const without = new FakeTracerProvider();
    await failedOver(READ, without);
    expect(without.spans[0]?.attributes).not.toHaveProperty('db.query.text');
    const withText = new FakeTracerProvider();
    await failedOver(READ, withText, true);
    expect(withText.spans[0]?.attributes['db.query.text']).toBe('SELECT $1::text AS v');
  });

  it('names a checkout resilient-pool.connect, and a text with no command postgresql', async () => {
    const provider = new FakeTracerProvider();
    await failedOver({ kind: 'checkout', role: 'write', text: undefined }, provider);
    await failedOver({ kind: 'statement', role: 'write', text: 'pg_sleep(1)' }, provider);
    expect(provider.spans.map((s) => s.name)).toEqual(['resilient-pool.connect', 'postgresql']);
    expect(provider.spans[0]?.attributes).not.toHaveProperty('db.operation.name');
  });

  it('ends a failed call with error.type and an ERROR status with no message', async () => {
    const provider = new FakeTracerProvider();
    const telemetry = createTelemetry({ metrics: undefined, tracing: tracing(provider) }, source());
    const observed = telemetry.calls?.begin(READ);
    const sqlError = Object.assign(new Error('invalid input syntax for type integer: "s3cr3t"'), {
      code: '22P02',
    });
    await expect(
      observed?.run(async () => {
        observed.attempt(r1);
        throw sqlError;
      }),
    ).rejects.toBe(sqlError);
    const [span] = provider.spans;
    expect(span?.status).toEqual({ code: 2 });
    expect(span?.attributes).toMatchObject({
      'error.type': '22P02',
      'db.response.status_code': '22P02',
      'resilient_pool.attempts': 1,
    });
    expect(JSON.stringify(provider.spans)).not.toContain('s3cr3t');
  });

  it('ends a call refused before any attempt, with no endpoint', async () => {
    const provider = new FakeTracerProvider();
    const telemetry = createTelemetry({ metrics: undefined, tracing: tracing(provider) }, source());
    const observed = telemetry.calls?.begin(READ);
    await expect(
      observed?.run(() => Promise.reject(new CircuitOpenError('replica-1'))),
    ).rejects.toThrow(CircuitOpenError);
    expect(provider.spans[0]?.attributes).toMatchObject({
      'resilient_pool.attempts': 0,
      'error.type': 'E_CIRCUIT_OPEN',
    });
    expect(provider.spans[0]?.attributes).not.toHaveProperty('resilient_pool.endpoint');
  });
});

describe('call spans through the real SDK', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();

  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
  });
  afterAll(async () => {
    context.disable();
    await provider.shutdown();
  });

  it('is a child of the active span, and the parent of spans started while it runs', async () => {
    exporter.reset();
    const app = provider.getTracer('app');
    const telemetry = createTelemetry({ metrics: undefined, tracing: tracing(provider) }, source());
    await app.startActiveSpan('GET /orders', async (request) => {
      const observed = telemetry.calls?.begin(READ);
      await observed?.run(async () => {
        observed.attempt(r1);
        // What pg's instrumentation does under the call: a span in the active context.
        await new Promise((resolve) => setTimeout(resolve, 1));
        app.startSpan('pg.query:SELECT').end();
        observed.attempt(r2);
        app.startSpan('pg.query:SELECT').end();
      });
      request.end();
    });
    const spans = exporter.getFinishedSpans();
    const byName = (name: string) => spans.filter((s) => s.name === name);
    const [request] = byName('GET /orders');
    const [call] = byName('SELECT');
    expect(byName('SELECT')).toHaveLength(1);
    expect(call?.kind).toBe(2);
    expect(call?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
    const children = byName('pg.query:SELECT');
    expect(children).toHaveLength(2);
    for (const child of children) {
      expect(child.parentSpanContext?.spanId).toBe(call?.spanContext().spanId);
    }
    expect(call?.attributes['resilient_pool.attempts']).toBe(2);
    expect(call?.events.map((e) => e.name)).toEqual(['resilient_pool.failover']);
  });
});

describe('telemetry never breaks a call', () => {
  const throwing: TracerProviderLike = {
    getTracer: () => ({
      startSpan: () => {
        throw new Error('tracer bug');
      },
    }),
  };

  it('goes on when the tracer throws, and says so once', async () => {
    const warnings: unknown[] = [];
    const telemetry = createTelemetry(
      { metrics: undefined, tracing: tracing(throwing) },
      source(warnings),
    );
    for (let i = 0; i < 3; i++) {
      const observed = telemetry.calls?.begin(READ);
      expect(await observed?.run(async () => i)).toBe(i);
    }
    expect(warnings).toHaveLength(1);
  });

  it('goes on when the histogram throws', async () => {
    const warnings: unknown[] = [];
    const meterProvider = new FakeMeterProvider();
    const telemetry = createTelemetry(
      { metrics: { meterProvider }, tracing: undefined },
      source(warnings),
    );
    // The fake histogram records by pushing here: make that throw, as a broken exporter might.
    meterProvider.meter.points.push = () => {
      throw new Error('exporter bug');
    };
    const observed = telemetry.calls?.begin(READ);
    const result = observed?.run(async () => {
      observed.attempt(r1);
      return 'rows';
    });
    expect(await result).toBe('rows');
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings).toHaveLength(1);
  });

  it('hands the caller its own promise, rejection included, when nothing wraps it', async () => {
    const meterProvider = new FakeMeterProvider();
    const telemetry = createTelemetry({ metrics: { meterProvider }, tracing: undefined }, source());
    const observed = telemetry.calls?.begin(READ);
    const failure = Promise.reject(new Error('boom'));
    const returned = observed?.run(() => failure);
    expect(returned).toBe(failure);
    await expect(returned).rejects.toThrow('boom');
    expect(meterProvider.meter.points.map((p) => p.attributes['error.type'])).toEqual(['Error']);
  });
});

describe('active', () => {
  it('is true with metrics or tracing on, and false with neither (and no subscriber)', () => {
    const off = createTelemetry({ metrics: undefined, tracing: undefined }, source());
    expect(off.calls?.active).toBe(false);
    expect(off.timings).toBeUndefined();
    const metrics = createTelemetry(
      { metrics: { meterProvider: new FakeMeterProvider() }, tracing: undefined },
      source(),
    );
    expect(metrics.calls?.active).toBe(true);
    expect(metrics.timings).toBeDefined();
    const traced = createTelemetry(
      { metrics: undefined, tracing: tracing(new FakeTracerProvider()) },
      source(),
    );
    expect(traced.calls?.active).toBe(true);
    expect(traced.timings).toBeUndefined();
  });

  it('takes one meter, named after the library, and lets its callback go at shutdown', () => {
    const meterProvider = new FakeMeterProvider();
    const telemetry = createTelemetry({ metrics: { meterProvider }, tracing: undefined }, source());
    expect(meterProvider.meters.map((m) => m.name)).toEqual(['resilient-pool']);
    expect(meterProvider.meter.callbacks.size).toBe(1);
    telemetry.shutdown();
    telemetry.shutdown();
    expect(meterProvider.meter.callbacks.size).toBe(0);
  });

  it('records no operation duration for a checkout (its wait is the wait-time metric)', async () => {
    const meterProvider = new FakeMeterProvider();
    const telemetry = createTelemetry({ metrics: { meterProvider }, tracing: undefined }, source());
    const observed = telemetry.calls?.begin({ kind: 'checkout', role: 'write', text: undefined });
    await observed?.run(async () => observed.attempt(r1));
    expect(meterProvider.meter.points).toEqual([]);
  });
});
