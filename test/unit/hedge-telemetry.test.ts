/**
 * A hedged read in telemetry, through the pool (FakePools, fake timers) and the real SDKs: the
 * call's span gets a `resilient_pool.hedge` event when the hedge is sent and a
 * `resilient_pool.hedge_won` event when its answer is taken, and is attributed to the hedge's
 * endpoint then (one attempt, no failover event); the `resilient-pool:query` channel's context
 * names where the hedge went; the hedge counters are observed instruments.
 */
import diagnostics from 'node:diagnostics_channel';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { QueryResultLike } from '../../src/pg-like.js';
import type { QueryChannelContext } from '../../src/telemetry/diagnostics.js';
import { FakePool } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

/** A pool whose statements wait until the test answers them. */
function heldPool(name: string) {
  const pool = new FakePool(name, 4);
  const pending: Array<(r: QueryResultLike) => void> = [];
  pool.handler = () => new Promise<QueryResultLike>((resolve) => pending.push(resolve));
  const answer = () =>
    pending.shift()?.({ rows: [{ from: name }], rowCount: 1, command: 'SELECT', fields: [] });
  return { pool, pending, answer };
}

describe('a hedged read in telemetry', () => {
  const make = usePools();
  const contexts: QueryChannelContext[] = [];
  const channel = diagnostics.tracingChannel('resilient-pool:query');
  const subscriber = {
    start() {},
    end() {},
    asyncStart() {},
    asyncEnd(ctx: unknown) {
      contexts.push(ctx as QueryChannelContext);
    },
    error() {},
  };
  beforeEach(() => {
    vi.useFakeTimers();
    channel.subscribe(subscriber as never);
  });
  afterEach(() => {
    channel.unsubscribe(subscriber as never);
    contexts.length = 0;
  });

  it('a hedge that wins: span events, the answering endpoint, the channel and the counters', async () => {
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(spans)],
    });
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 600_000,
    });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const primary = heldPool('p');
    const r1 = heldPool('r1');
    const r2 = heldPool('r2');
    const db = make({
      primary: primary.pool,
      replicas: [r1.pool, r2.pool],
      health: { enabled: false },
      routing: { balancer: 'round-robin' },
      hedge: { delay: 50, cancelAfterMs: 100 },
      tracing: { tracerProvider },
      metrics: { meterProvider },
    });
    const read = db.read('SELECT 1');
    await vi.advanceTimersByTimeAsync(0);
    const [slow, other] = r1.pending.length === 1 ? [r1, r2] : [r2, r1];
    const [slowName, otherName] =
      slow === r1 ? ['replica-1', 'replica-2'] : ['replica-2', 'replica-1'];
    await vi.advanceTimersByTimeAsync(50);
    expect(other.pending).toHaveLength(1);
    other.answer();
    await expect(read).resolves.toMatchObject({ rows: [{ from: other === r1 ? 'r1' : 'r2' }] });
    await vi.advanceTimersByTimeAsync(100); // the loser's grace ends: it is cancelled

    const [span, ...more] = spans.getFinishedSpans();
    expect(more).toEqual([]);
    expect(span?.name).toBe('SELECT');
    expect(span?.attributes).toMatchObject({
      'resilient_pool.endpoint': otherName,
      'resilient_pool.attempts': 1,
    });
    expect(span?.events.map((e) => [e.name, e.attributes])).toEqual([
      [
        'resilient_pool.hedge',
        {
          'resilient_pool.attempt': 1,
          'resilient_pool.hedge.from': slowName,
          'resilient_pool.hedge.to': otherName,
        },
      ],
      [
        'resilient_pool.hedge_won',
        { 'resilient_pool.attempt': 1, 'resilient_pool.endpoint': otherName },
      ],
    ]);

    expect(contexts).toHaveLength(1);
    expect(contexts[0]).toMatchObject({ endpoint: otherName, hedgedTo: otherName, attempts: 1 });

    // The SDK bounds its collection with timers of its own.
    vi.useRealTimers();
    const { resourceMetrics } = await reader.collect();
    const points = new Map<string, Array<{ value: unknown; attributes: unknown }>>();
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        points.set(
          metric.descriptor.name,
          metric.dataPoints.map((p) => ({ value: p.value, attributes: p.attributes })),
        );
      }
    }
    expect(points.get('resilient_pool.hedges')).toEqual([{ value: 1, attributes: {} }]);
    expect(points.get('resilient_pool.hedge.wins')).toEqual([{ value: 1, attributes: {} }]);
    expect(points.get('resilient_pool.hedge.cancellations')).toEqual([
      { value: 1, attributes: {} },
    ]);
    expect(points.get('resilient_pool.hedge.skips')).toEqual([
      { value: 0, attributes: { 'resilient_pool.hedge.skip_reason': 'budget' } },
      { value: 0, attributes: { 'resilient_pool.hedge.skip_reason': 'no-target' } },
    ]);
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
  });

  it('a read that answers before the delay has no hedge event and no hedge in the channel', async () => {
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(spans)],
    });
    const r1 = heldPool('r1');
    const r2 = heldPool('r2');
    const db = make({
      primary: new FakePool('p'),
      replicas: [r1.pool, r2.pool],
      health: { enabled: false },
      hedge: { delay: 50 },
      tracing: { tracerProvider },
    });
    const read = db.read('SELECT 1');
    await vi.advanceTimersByTimeAsync(10);
    (r1.pending.length === 1 ? r1 : r2).answer();
    await read;
    expect(spans.getFinishedSpans()[0]?.events).toEqual([]);
    expect(contexts[0]?.hedgedTo).toBeUndefined();
    await tracerProvider.shutdown();
  });
});
