/**
 * The pool's OpenTelemetry instruments over a fake meter: their names, units and bucket advice
 * (the semantic conventions for database client metrics), what one collection observes from a
 * stats() snapshot, what the connection timings and a call record, and the end of observation
 * at shutdown. Then the same instruments through the real SDK, exported in memory.
 */
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { CircuitOpenError } from '../../src/errors.js';
import type { ObservedEndpoint } from '../../src/telemetry/observer.js';
import { OPERATION_BUCKETS, PoolMetrics, WAIT_BUCKETS } from '../../src/telemetry/otel/metrics.js';
import type {
  ObservedEndpointStats,
  ObservedPoolStats,
  TelemetrySource,
} from '../../src/telemetry/telemetry-source.js';
import { FakeMeter, type FakePoint } from '../support/fake-otel.js';

const primary: ObservedEndpoint = {
  name: 'primary',
  role: 'primary',
  attributes: { 'server.address': 'db-1.internal', 'server.port': 5433, 'db.namespace': 'app' },
};
const replica: ObservedEndpoint = {
  name: 'replica-1',
  role: 'replica',
  attributes: { 'server.address': 'db-2.internal', 'server.port': 5433, 'db.namespace': 'app' },
};

function endpointStats(
  endpoint: ObservedEndpoint,
  over: Partial<ObservedEndpointStats> = {},
): ObservedEndpointStats {
  return {
    name: endpoint.name,
    role: endpoint.role,
    breaker: 'closed',
    idle: 0,
    inUse: 0,
    maxConnections: 10,
    pending: 0,
    down: false,
    rejected: {
      'circuit-open': 0,
      'queue-full': 0,
      'acquire-timeout': 0,
      timeout: 0,
      aborted: 0,
      closed: 0,
      down: 0,
    },
    breakerTransitions: { open: 0, halfOpen: 0, closed: 0 },
    ejections: 0,
    readmissions: 0,
    retriesByReason: { connection: 0, timeout: 0 },
    lagBytes: null,
    lagMs: null,
    ...over,
  };
}

function sourceOf(stats: () => ObservedPoolStats): TelemetrySource {
  return { stats };
}

/** The attributes of an endpoint's observed series. */
const POOL = (e: ObservedEndpoint) => ({
  'db.client.connection.pool.name': e.name,
  'resilient_pool.role': e.role,
});
/** The attributes of an endpoint's per-call histograms: the pool name only. */
const NAMED = (e: ObservedEndpoint) => ({ 'db.client.connection.pool.name': e.name });

/** The value observed for `name` with attributes including `match`. */
function observed(points: FakePoint[], name: string, match: Record<string, unknown>) {
  const found = points.filter(
    (p) => p.name === name && Object.entries(match).every(([k, v]) => p.attributes[k] === v),
  );
  if (found.length !== 1) throw new Error(`${found.length} points of ${name} match`);
  return found[0]?.value;
}

describe('PoolMetrics', () => {
  it('creates the instruments of the conventions, durations in seconds with their buckets', () => {
    const meter = new FakeMeter();
    new PoolMetrics(
      meter,
      sourceOf(() => ({ endpoints: [], failovers: 0, retryBudgetExhausted: 0 })),
    );
    const byName = new Map(meter.instruments.map((i) => [i.name, i]));
    expect(byName.get('db.client.operation.duration')).toMatchObject({
      kind: 'histogram',
      options: { unit: 's', advice: { explicitBucketBoundaries: OPERATION_BUCKETS } },
    });
    expect(OPERATION_BUCKETS).toEqual([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]);
    expect(byName.get('db.client.connection.wait_time')?.options).toMatchObject({
      unit: 's',
      advice: { explicitBucketBoundaries: WAIT_BUCKETS },
    });
    for (const name of ['db.client.connection.use_time', 'db.client.connection.create_time']) {
      expect(byName.get(name)).toMatchObject({ kind: 'histogram', options: { unit: 's' } });
    }
    expect(byName.get('db.client.connection.timeouts')).toMatchObject({
      kind: 'counter',
      options: { unit: '{timeout}' },
    });
    for (const [name, unit] of [
      ['db.client.connection.count', '{connection}'],
      ['db.client.connection.max', '{connection}'],
      ['db.client.connection.pending_requests', '{request}'],
    ] as const) {
      expect(byName.get(name)).toMatchObject({ kind: 'observable-updown', options: { unit } });
    }
    expect(byName.get('resilient_pool.replica.lag_time')?.options?.unit).toBe('s');
    expect(byName.get('resilient_pool.replica.lag_bytes')?.options?.unit).toBe('By');
    expect([...byName.keys()].filter((n) => n.startsWith('resilient_pool.')).sort()).toEqual([
      'resilient_pool.breaker.state',
      'resilient_pool.breaker.transitions',
      'resilient_pool.cache.reads',
      'resilient_pool.ejections',
      'resilient_pool.endpoint.down',
      'resilient_pool.failovers',
      'resilient_pool.hedge.cancellations',
      'resilient_pool.hedge.skips',
      'resilient_pool.hedge.wins',
      'resilient_pool.hedges',
      'resilient_pool.readmissions',
      'resilient_pool.rejections',
      'resilient_pool.replica.lag_bytes',
      'resilient_pool.replica.lag_time',
      'resilient_pool.retries',
      'resilient_pool.retry_budget.exhausted',
    ]);
    // One batch callback for every observable instrument: one stats() per collection.
    expect(meter.callbacks.size).toBe(1);
  });

  it('observes one stats() snapshot per collection, per endpoint', () => {
    const meter = new FakeMeter();
    let snapshots = 0;
    new PoolMetrics(
      meter,
      sourceOf(() => {
        snapshots++;
        return {
          endpoints: [
            endpointStats(primary, { idle: 3, inUse: 2, maxConnections: 5, pending: 7 }),
            endpointStats(replica, {
              breaker: 'open',
              down: true,
              breakerTransitions: { open: 2, halfOpen: 1, closed: 1 },
              ejections: 2,
              readmissions: 1,
              retriesByReason: { connection: 4, timeout: 1 },
              rejected: { ...endpointStats(replica).rejected, 'circuit-open': 9 },
              lagBytes: 8192,
              lagMs: 1500,
            }),
          ],
          cache: { hits: 10, misses: 4, staleServes: 2, bypasses: 1 },
          failovers: 1,
          retryBudgetExhausted: 3,
        };
      }),
    );
    const points = meter.collect();
    expect(snapshots).toBe(1);
    const p = POOL(primary);
    const r = POOL(replica);
    const state = 'db.client.connection.state';
    expect(observed(points, 'db.client.connection.count', { ...p, [state]: 'idle' })).toBe(3);
    expect(observed(points, 'db.client.connection.count', { ...p, [state]: 'used' })).toBe(2);
    expect(observed(points, 'db.client.connection.max', p)).toBe(5);
    expect(observed(points, 'db.client.connection.pending_requests', p)).toBe(7);
    const breaker = 'resilient_pool.breaker.state';
    expect(
      ['closed', 'open', 'half-open'].map((s) =>
        observed(points, 'resilient_pool.breaker.state', { ...r, [breaker]: s }),
      ),
    ).toEqual([0, 1, 0]);
    expect(
      ['open', 'half-open', 'closed'].map((s) =>
        observed(points, 'resilient_pool.breaker.transitions', { ...r, [breaker]: s }),
      ),
    ).toEqual([2, 1, 1]);
    expect(observed(points, 'resilient_pool.endpoint.down', r)).toBe(1);
    expect(observed(points, 'resilient_pool.endpoint.down', p)).toBe(0);
    const reason = 'resilient_pool.retry.reason';
    expect(observed(points, 'resilient_pool.retries', { ...r, [reason]: 'connection' })).toBe(4);
    expect(observed(points, 'resilient_pool.retries', { ...r, [reason]: 'timeout' })).toBe(1);
    expect(
      observed(points, 'resilient_pool.rejections', {
        ...r,
        'resilient_pool.reject.reason': 'circuit-open',
      }),
    ).toBe(9);
    expect(observed(points, 'resilient_pool.ejections', r)).toBe(2);
    expect(observed(points, 'resilient_pool.readmissions', r)).toBe(1);
    expect(observed(points, 'resilient_pool.replica.lag_bytes', r)).toBe(8192);
    expect(observed(points, 'resilient_pool.replica.lag_time', r)).toBe(1.5);
    // The primary has no ejections or lag, and an unknown lag is no point at all.
    expect(points.filter((x) => x.name.startsWith('resilient_pool.replica.lag'))).toHaveLength(2);
    const ejected = points.filter((x) => x.name === 'resilient_pool.ejections');
    expect(ejected.map((x) => x.attributes['db.client.connection.pool.name'])).toEqual([
      'replica-1',
    ]);
    expect(observed(points, 'resilient_pool.failovers', {})).toBe(1);
    expect(observed(points, 'resilient_pool.retry_budget.exhausted', {})).toBe(3);
    const result = 'resilient_pool.cache.result';
    expect(
      ['hit', 'miss', 'stale', 'bypass'].map((o) =>
        observed(points, 'resilient_pool.cache.reads', { [result]: o }),
      ),
    ).toEqual([10, 4, 2, 1]);
    meter.collect();
    expect(snapshots).toBe(2);
  });

  it('records waits, uses and new connections in seconds; a timed-out wait as a timeout', () => {
    const meter = new FakeMeter();
    const metrics = new PoolMetrics(
      meter,
      sourceOf(() => ({ endpoints: [], failovers: 0, retryBudgetExhausted: 0 })),
    );
    metrics.waited(replica, 2.5, false);
    metrics.waited(replica, 2_000, true);
    metrics.used(primary, 40);
    metrics.created(primary, 12);
    expect(meter.points).toEqual([
      { name: 'db.client.connection.wait_time', value: 0.0025, attributes: NAMED(replica) },
      { name: 'db.client.connection.timeouts', value: 1, attributes: NAMED(replica) },
      { name: 'db.client.connection.use_time', value: 0.04, attributes: NAMED(primary) },
      { name: 'db.client.connection.create_time', value: 0.012, attributes: NAMED(primary) },
    ]);
  });

  it('records one operation duration per call, attributes built once per endpoint and command', () => {
    const meter = new FakeMeter();
    const metrics = new PoolMetrics(
      meter,
      sourceOf(() => ({ endpoints: [], failovers: 0, retryBudgetExhausted: 0 })),
    );
    metrics.operation(replica, 'select 1', 0.002, false, undefined);
    metrics.operation(replica, 'SELECT 2', 0.003, false, undefined);
    const [first, second] = meter.points;
    expect(first).toEqual({
      name: 'db.client.operation.duration',
      value: 0.002,
      attributes: {
        'db.system.name': 'postgresql',
        'db.namespace': 'app',
        'server.address': 'db-2.internal',
        'server.port': 5433,
        'db.operation.name': 'SELECT',
      },
    });
    // The same object: the success path allocates no attributes.
    expect(second?.attributes).toBe(first?.attributes);
  });

  it('labels a failed call with error.type (and the SQLSTATE), never its message', () => {
    const meter = new FakeMeter();
    const metrics = new PoolMetrics(
      meter,
      sourceOf(() => ({ endpoints: [], failovers: 0, retryBudgetExhausted: 0 })),
    );
    const sqlError = Object.assign(new Error('invalid input syntax for type integer: "s3cr3t"'), {
      code: '22P02',
    });
    metrics.operation(primary, 'INSERT INTO t VALUES ($1)', 0.01, true, sqlError);
    metrics.operation(undefined, 'SELECT 1', 0.001, true, new CircuitOpenError('replica-1'));
    metrics.operation(primary, undefined, 0.001, true, { code: 'not a closed-set code' });
    expect(meter.points.map((p) => p.attributes)).toEqual([
      {
        'db.system.name': 'postgresql',
        'db.namespace': 'app',
        'server.address': 'db-1.internal',
        'server.port': 5433,
        'db.operation.name': 'INSERT',
        'error.type': '22P02',
        'db.response.status_code': '22P02',
      },
      {
        'db.system.name': 'postgresql',
        'db.operation.name': 'SELECT',
        'error.type': 'E_CIRCUIT_OPEN',
      },
      expect.objectContaining({ 'error.type': '_OTHER' }),
    ]);
    expect(JSON.stringify(meter.points)).not.toContain('s3cr3t');
  });

  it('follows an endpoint whose server changed (a failover re-pointed it)', () => {
    const meter = new FakeMeter();
    const metrics = new PoolMetrics(
      meter,
      sourceOf(() => ({ endpoints: [], failovers: 0, retryBudgetExhausted: 0 })),
    );
    const moving = { ...primary, attributes: { ...primary.attributes } };
    metrics.operation(moving, 'SELECT 1', 0.001, false, undefined);
    moving.attributes = { ...moving.attributes, 'server.address': 'db-3.internal' };
    metrics.operation(moving, 'SELECT 1', 0.001, false, undefined);
    expect(meter.points.map((p) => p.attributes['server.address'])).toEqual([
      'db-1.internal',
      'db-3.internal',
    ]);
  });

  it('stops observing at shutdown (twice is fine)', () => {
    const meter = new FakeMeter();
    const metrics = new PoolMetrics(
      meter,
      sourceOf(() => ({
        endpoints: [endpointStats(primary)],
        failovers: 0,
        retryBudgetExhausted: 0,
      })),
    );
    expect(meter.collect().length).toBeGreaterThan(0);
    metrics.shutdown();
    metrics.shutdown();
    expect(meter.collect()).toEqual([]);
  });
});

describe('PoolMetrics through the real SDK', () => {
  it('exports every instrument with the advised buckets and the observed values', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    const metrics = new PoolMetrics(
      provider.getMeter('resilient-pool'),
      sourceOf(() => ({
        endpoints: [endpointStats(primary, { idle: 1, inUse: 1 }), endpointStats(replica)],
        failovers: 0,
        retryBudgetExhausted: 0,
      })),
    );
    metrics.operation(primary, 'SELECT 1', 0.004, false, undefined);
    metrics.waited(primary, 0.05, false);
    try {
      await reader.forceFlush();
      const exported: MetricData[] = exporter
        .getMetrics()
        .flatMap((m) => m.scopeMetrics.flatMap((s) => s.metrics));
      const byName = new Map(exported.map((m) => [m.descriptor.name, m]));
      const duration = byName.get('db.client.operation.duration');
      expect(duration?.dataPointType).toBe(DataPointType.HISTOGRAM);
      const point = duration?.dataPoints[0] as
        | { value: { buckets: { boundaries: number[]; counts: number[] } } }
        | undefined;
      expect(point?.value.buckets.boundaries).toEqual(OPERATION_BUCKETS);
      // 4 ms lands in (0.001, 0.005].
      expect(point?.value.buckets.counts[1]).toBe(1);
      const counts = byName.get('db.client.connection.count')?.dataPoints ?? [];
      expect(counts.map((d) => [d.attributes['db.client.connection.pool.name'], d.value])).toEqual(
        expect.arrayContaining([
          ['primary', 1],
          ['replica-1', 0],
        ]),
      );
      expect(byName.get('db.client.connection.wait_time')?.descriptor.unit).toBe('s');
      expect(byName.get('resilient_pool.breaker.state')?.dataPoints).toHaveLength(6);
    } finally {
      metrics.shutdown();
      await provider.shutdown();
    }
  });
});
