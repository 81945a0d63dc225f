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

/** What the workers of one round count; mutated by them, read once the round is over. */
interface Tally {
  ops: number;
  errors: number;
  firstError: unknown;
}

export async function timedRound(
  fn: () => Promise<unknown>,
  concurrency: number,
  durationMs: number,
): Promise<RoundResult> {
  return runRound(concurrency, durationMs, (deadline, tally) => async () => {
    while (performance.now() < deadline) {
      try {
        await fn();
        tally.ops++;
      } catch (err) {
        tally.errors++;
        tally.firstError ??= err;
      }
    }
  });
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
  return runRound(concurrency, durationMs, (deadline, tally) => async () => {
    let now = performance.now();
    while (now < deadline) {
      try {
        await fn();
        const done = performance.now();
        latencies.push((done - now) * 1000);
        now = done;
        tally.ops++;
      } catch (err) {
        tally.errors++;
        tally.firstError ??= err;
        now = performance.now();
      }
    }
  });
}

/** Runs `concurrency` workers made by `makeWorker` until the deadline; the round's figures. */
async function runRound(
  concurrency: number,
  durationMs: number,
  makeWorker: (deadline: number, tally: Tally) => () => Promise<void>,
): Promise<RoundResult> {
  const tally: Tally = { ops: 0, errors: 0, firstError: undefined };
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const worker = makeWorker(start + durationMs, tally);
  const workers = Promise.all(Array.from({ length: concurrency }, worker));
  await within(workers, durationMs + GRACE_MS, `a ${durationMs} ms round`);
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  return {
    ...tally,
    elapsedMs,
    opsPerSec: (tally.ops * 1000) / elapsedMs,
    cpuUsPerOp: (cpu.user + cpu.system) / Math.max(1, tally.ops),
  };
}
