/**
 * Case 2b: what each feature costs per call when turned on, in process (FakePool, no I/O): the
 * same call through two pools over the same fake, one with the feature and one without, timed in
 * alternating rounds after a warm-up round each. The difference of the medians is the feature's
 * cost in ns per call; nothing else differs between the two sides.
 */
import { FakePool } from '../test/support/fake-pool.js';
import type { BenchPlan } from './config.js';
import { timeCalls } from './overhead.js';
import { median } from './stats.js';
import { ResilientPool } from './subject.js';
import type { Variant } from './variants.js';

const SQL = 'SELECT 1';

export interface FeatureCostResult {
  feature: string;
  concurrency: number;
  offNs: number;
  onNs: number;
  /** Median ns per call with the feature on minus off. */
  costNs: number;
  medianPairCostNs: number;
}

export async function featureCost(
  variant: Variant,
  concurrency: number,
  plan: BenchPlan,
): Promise<FeatureCostResult> {
  const setup = variant.setup();
  const primary = new FakePool('primary', concurrency);
  const replicas = [new FakePool('replica-1', concurrency), new FakePool('replica-2', concurrency)];
  const base = {
    primary,
    replicas,
    logger: false as const,
    ownsPools: false,
    health: { enabled: false },
  };
  const off = new ResilientPool(base);
  const on = new ResilientPool({ ...base, ...setup.options });
  const callOf = (db: ResilientPool) =>
    setup.call === 'read' ? () => db.read(SQL) : () => db.query(SQL);
  const offCall = callOf(off);
  const onCall = callOf(on);
  const fakes = [primary, ...replicas];
  const clear = () => {
    for (const fake of fakes) fake.statements.length = 0;
  };
  const calls = plan.cpuCalls;
  const limit = plan.cpuRoundLimitMs;
  try {
    await timeCalls(offCall, calls, concurrency, limit);
    await timeCalls(onCall, calls, concurrency, limit);
    clear();
    const offNs: number[] = [];
    const onNs: number[] = [];
    for (let i = 0; i < plan.cpuRounds; i++) {
      offNs.push(await timeCalls(offCall, calls, concurrency, limit));
      onNs.push(await timeCalls(onCall, calls, concurrency, limit));
      clear();
      // Let timers run between rounds (the metric reader's export, the span batch's flush).
      await new Promise((resolve) => setImmediate(resolve));
    }
    const offMedian = median(offNs);
    const onMedian = median(onNs);
    return {
      feature: variant.label,
      concurrency,
      offNs: offMedian,
      onNs: onMedian,
      costNs: onMedian - offMedian,
      medianPairCostNs: median(onNs.map((n, i) => n - offNs[i]!)),
    };
  } finally {
    await Promise.all([off.end({ timeout: 1_000 }), on.end({ timeout: 1_000 })]);
    await setup.shutdown();
  }
}
