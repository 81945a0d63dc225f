/**
 * Case 2c: where the per-call cost of metrics goes, in process. A call records three points: its
 * `db.client.operation.duration` and its connection's wait and use times. Measured here twice
 * over the same SDK setup as case 2b (a periodic reader): recorded straight on the SDK's
 * histograms with the attribute objects the pool passes them (built once, as the pool builds
 * them), and recorded through PoolMetrics, which adds the lookup of the endpoint's cached
 * attributes and of the statement's command. The first is the SDK's own floor, which no caller
 * of its API can go below; the difference is the pool's.
 */

import type { ObservedEndpoint } from '../src/telemetry/observer.js';
import { PoolMetrics } from '../src/telemetry/otel/metrics.js';
import type { BenchPlan } from './config.js';
import { median } from './stats.js';
import { sdkMetrics } from './variants.js';

export interface MetricsFloorResult {
  /** ns per call: the three records straight on the SDK's histograms. */
  sdkNs: number;
  /** ns per call: the same three through PoolMetrics. */
  poolMetricsNs: number;
}

const ENDPOINT: ObservedEndpoint = {
  name: 'primary',
  role: 'primary',
  attributes: { 'server.address': '127.0.0.1', 'server.port': 5432, 'db.namespace': 'postgres' },
};

export async function metricsFloor(plan: BenchPlan): Promise<MetricsFloorResult> {
  const sdk = sdkMetrics();
  try {
    const meter = sdk.meterProvider.getMeter('bench-floor');
    const histogram = (name: string) => meter.createHistogram(name, { unit: 's' });
    const duration = histogram('floor.operation.duration');
    const wait = histogram('floor.wait_time');
    const use = histogram('floor.use_time');
    // The pool's attribute objects: built once per endpoint (and command), passed on each call.
    const operation = {
      'db.system.name': 'postgresql',
      'db.namespace': 'postgres',
      'server.address': '127.0.0.1',
      'server.port': 5432,
      'db.operation.name': 'SELECT',
    };
    const pool = { 'db.client.connection.pool.name': 'primary' };
    const straight = (i: number) => {
      const v = 0.0001 + (i & 15) * 1e-5;
      wait.record(v, pool);
      use.record(v, pool);
      duration.record(v, operation);
    };
    const metrics = new PoolMetrics(sdk.meterProvider.getMeter('bench-pool-metrics'), {
      stats: () => ({ endpoints: [], failovers: 0, retryBudgetExhausted: 0 }),
    });
    const through = (i: number) => {
      const ms = 0.1 + (i & 15) * 0.01;
      metrics.waited(ENDPOINT, ms, false);
      metrics.used(ENDPOINT, ms);
      metrics.operation(ENDPOINT, 'SELECT 1', ms / 1000, false, undefined);
    };
    const calls = plan.cpuCalls;
    const time = (record: (i: number) => void) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) record(i);
      return Number(process.hrtime.bigint() - t0) / calls;
    };
    time(straight);
    time(through);
    const sdkNs: number[] = [];
    const poolNs: number[] = [];
    for (let round = 0; round < plan.cpuRounds; round++) {
      sdkNs.push(time(straight));
      poolNs.push(time(through));
      // Let the reader's timer run between rounds, as in case 2b.
      await new Promise((resolve) => setImmediate(resolve));
    }
    metrics.shutdown();
    return { sdkNs: median(sdkNs), poolMetricsNs: median(poolNs) };
  } finally {
    await sdk.shutdown();
  }
}
