/**
 * Alternating rounds of a peer and of ResilientPool, like ../paired.ts, with per-call latency:
 * a warm-up of each side, then round pairs in alternating order (peer, ours, ours, peer, ...). Throughput is reported as
 * ours / peer (higher is better for us), latency as p50 and p99 over every call of the
 * measured rounds of each side.
 */
import type { BenchPlan } from '../config.js';
import { timedRoundWithLatency } from '../load.js';
import { max, median, min, percentile } from '../stats.js';

export interface PeerPairedResult {
  concurrency: number;
  rounds: number;
  roundMs: number;
  peerOpsPerSec: number[];
  oursOpsPerSec: number[];
  /** ours / peer, per round pair. */
  pairRatios: number[];
  peerMedian: number;
  oursMedian: number;
  /** ours median / peer median: above 1, ResilientPool served more reads per second. */
  ratio: number;
  medianPairRatio: number;
  minPairRatio: number;
  maxPairRatio: number;
  /** Latency in µs over all measured calls of each side. */
  peerP50Us: number;
  peerP99Us: number;
  oursP50Us: number;
  oursP99Us: number;
  /** Median CPU µs of this (the application's) process per call. */
  peerCpuUsPerOp: number;
  oursCpuUsPerOp: number;
  peerErrors: number;
  oursErrors: number;
  firstError: string | undefined;
}

export async function peerPairedRounds(
  concurrency: number,
  peer: () => Promise<unknown>,
  ours: () => Promise<unknown>,
  plan: Pick<BenchPlan, 'peerRounds' | 'peerRoundMs' | 'peerWarmupMs'>,
): Promise<PeerPairedResult> {
  await timedRoundWithLatency(peer, concurrency, plan.peerWarmupMs, []);
  await timedRoundWithLatency(ours, concurrency, plan.peerWarmupMs, []);
  const peerLat: number[] = [];
  const oursLat: number[] = [];
  const peerOps: number[] = [];
  const oursOps: number[] = [];
  const peerCpu: number[] = [];
  const oursCpu: number[] = [];
  let peerErrors = 0;
  let oursErrors = 0;
  let firstError: unknown;
  for (let i = 0; i < plan.peerRounds; i++) {
    // Peer first in even pairs, ours first in odd ones: whatever the previous round leaves
    // behind (a proxy still winding down, a GC debt) falls on both sides alike.
    const peerRound = () => timedRoundWithLatency(peer, concurrency, plan.peerRoundMs, peerLat);
    const oursRound = () => timedRoundWithLatency(ours, concurrency, plan.peerRoundMs, oursLat);
    const first = i % 2 === 0 ? await peerRound() : undefined;
    const o = await oursRound();
    const q = first ?? (await peerRound());
    peerOps.push(q.opsPerSec);
    oursOps.push(o.opsPerSec);
    peerCpu.push(q.cpuUsPerOp);
    oursCpu.push(o.cpuUsPerOp);
    peerErrors += q.errors;
    oursErrors += o.errors;
    firstError ??= q.firstError ?? o.firstError;
  }
  const pairRatios = oursOps.map((o, i) => o / peerOps[i]!);
  const peerMedian = median(peerOps);
  const oursMedian = median(oursOps);
  return {
    concurrency,
    rounds: plan.peerRounds,
    roundMs: plan.peerRoundMs,
    peerOpsPerSec: peerOps,
    oursOpsPerSec: oursOps,
    pairRatios,
    peerMedian,
    oursMedian,
    ratio: oursMedian / peerMedian,
    medianPairRatio: median(pairRatios),
    minPairRatio: min(pairRatios),
    maxPairRatio: max(pairRatios),
    peerP50Us: percentile(peerLat, 50),
    peerP99Us: percentile(peerLat, 99),
    oursP50Us: percentile(oursLat, 50),
    oursP99Us: percentile(oursLat, 99),
    peerCpuUsPerOp: median(peerCpu),
    oursCpuUsPerOp: median(oursCpu),
    peerErrors,
    oursErrors,
    firstError: firstError === undefined ? undefined : describe(firstError),
  };
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  return `${String(e.code ?? '')} ${String(e.message ?? err)}`.trim();
}
