/**
 * Alternating rounds against the real server: a warm-up of each side (opens every connection,
 * warms the JIT), then raw, wrapped, raw, wrapped, ... so that drift on a noisy machine hits both
 * sides alike. Reports medians and the median of the per-pair ratios.
 */
import type { BenchPlan } from './config.js';
import { timedRound } from './load.js';
import { max, median, min } from './stats.js';

export interface PairedResult {
  case: string;
  concurrency: number;
  rounds: number;
  roundMs: number;
  rawOpsPerSec: number[];
  wrappedOpsPerSec: number[];
  pairRatios: number[];
  rawMedian: number;
  wrappedMedian: number;
  /** wrapped median / raw median. */
  ratioOfMedians: number;
  medianPairRatio: number;
  minPairRatio: number;
  maxPairRatio: number;
  /** Median CPU µs of this process per call, each side: where the wrapper's cost shows. */
  rawCpuUsPerOp: number;
  wrappedCpuUsPerOp: number;
  rawErrors: number;
  wrappedErrors: number;
  firstError: string | undefined;
}

export async function pairedRounds(
  name: string,
  concurrency: number,
  raw: () => Promise<unknown>,
  wrapped: () => Promise<unknown>,
  plan: BenchPlan,
): Promise<PairedResult> {
  await timedRound(raw, concurrency, plan.pgWarmupMs);
  await timedRound(wrapped, concurrency, plan.pgWarmupMs);
  const rawOps: number[] = [];
  const wrappedOps: number[] = [];
  const rawCpu: number[] = [];
  const wrappedCpu: number[] = [];
  let rawErrors = 0;
  let wrappedErrors = 0;
  let firstError: unknown;
  for (let i = 0; i < plan.pgRounds; i++) {
    const r = await timedRound(raw, concurrency, plan.pgRoundMs);
    const w = await timedRound(wrapped, concurrency, plan.pgRoundMs);
    rawOps.push(r.opsPerSec);
    wrappedOps.push(w.opsPerSec);
    rawCpu.push(r.cpuUsPerOp);
    wrappedCpu.push(w.cpuUsPerOp);
    rawErrors += r.errors;
    wrappedErrors += w.errors;
    firstError ??= r.firstError ?? w.firstError;
  }
  const pairRatios = wrappedOps.map((w, i) => w / rawOps[i]!);
  const rawMedian = median(rawOps);
  const wrappedMedian = median(wrappedOps);
  return {
    case: name,
    concurrency,
    rounds: plan.pgRounds,
    roundMs: plan.pgRoundMs,
    rawOpsPerSec: rawOps,
    wrappedOpsPerSec: wrappedOps,
    pairRatios,
    rawMedian,
    wrappedMedian,
    ratioOfMedians: wrappedMedian / rawMedian,
    medianPairRatio: median(pairRatios),
    minPairRatio: min(pairRatios),
    maxPairRatio: max(pairRatios),
    rawCpuUsPerOp: median(rawCpu),
    wrappedCpuUsPerOp: median(wrappedCpu),
    rawErrors,
    wrappedErrors,
    firstError: firstError === undefined ? undefined : describe(firstError),
  };
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  return `${String(e.code ?? '')} ${String(e.message ?? err)}`.trim();
}
