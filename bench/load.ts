/**
 * Closed-loop load for the real-server cases: `concurrency` workers call `fn` back to back until
 * the round's deadline. Each round stops by itself; a watchdog turns a round that cannot finish
 * (a server that stopped answering) into an error instead of a hang.
 */
import { within } from './watchdog.js';

export interface RoundResult {
  ops: number;
  errors: number;
  firstError: unknown;
  elapsedMs: number;
  opsPerSec: number;
  /** CPU time of this process (user + system) per completed call, in µs. */
  cpuUsPerOp: number;
}

const GRACE_MS = 15_000;

export async function timedRound(
  fn: () => Promise<unknown>,
  concurrency: number,
  durationMs: number,
): Promise<RoundResult> {
  let ops = 0;
  let errors = 0;
  let firstError: unknown;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const deadline = start + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      try {
        await fn();
        ops++;
      } catch (err) {
        errors++;
        firstError ??= err;
      }
    }
  };
  const workers = Promise.all(Array.from({ length: concurrency }, worker));
  await within(workers, durationMs + GRACE_MS, `a ${durationMs} ms round`);
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  return {
    ops,
    errors,
    firstError,
    elapsedMs,
    opsPerSec: (ops * 1000) / elapsedMs,
    cpuUsPerOp: (cpu.user + cpu.system) / Math.max(1, ops),
  };
}

/**
 * `timedRound` that also records each completed call's latency (µs, from the call to its
 * settling) into `latencies`. Kept apart from `timedRound` so the cases that do not report
 * latency do not pay for the two clock reads per call; both sides of a comparison that does
 * report it run this same loop.
 */
export async function timedRoundWithLatency(
  fn: () => Promise<unknown>,
  concurrency: number,
  durationMs: number,
  latencies: number[],
): Promise<RoundResult> {
  let ops = 0;
  let errors = 0;
  let firstError: unknown;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const deadline = start + durationMs;
  const worker = async (): Promise<void> => {
    let now = performance.now();
    while (now < deadline) {
      try {
        await fn();
        const done = performance.now();
        latencies.push((done - now) * 1000);
        now = done;
        ops++;
      } catch (err) {
        errors++;
        firstError ??= err;
        now = performance.now();
      }
    }
  };
  const workers = Promise.all(Array.from({ length: concurrency }, worker));
  await within(workers, durationMs + GRACE_MS, `a ${durationMs} ms round`);
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  return {
    ops,
    errors,
    firstError,
    elapsedMs,
    opsPerSec: (ops * 1000) / elapsedMs,
    cpuUsPerOp: (cpu.user + cpu.system) / Math.max(1, ops),
  };
}
