/**
 * The overload scenario's traffic: reads of a fixed cost (a short `pg_sleep`), first one at a
 * time to measure their unloaded latency, then open loop (arrivals at a fixed rate whatever the
 * answers, as a service's users send them) at twice what the read endpoints can serve. A closed
 * loop of callers could never overload anything: each would wait for its answer. Bounded: the
 * burst stops at its end time, and never has more than `maxOutstanding` calls in flight (the
 * arrivals past it are counted as not sent).
 *
 * Each arrival is its own macrotask (setImmediate), as requests reaching a service each come in
 * their own I/O event. Started together in one synchronous loop, a tick's calls would each see
 * the others' synchronous work before their own refusal could be observed, and the refusal
 * latency would measure the generator's batching rather than the pool.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ResilientPool } from '../index.js';
import type { CallSink } from './workload.js';
import { describeFailure } from './workload.js';

const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** One overload call: a read that costs the server a fixed 20 ms. */
export const OVERLOAD_STATEMENT = 'SELECT pg_sleep(0.02)';
/**
 * Arrivals are released every millisecond (the timers' grain), so that they come about one at a
 * time, as a service's users' requests do. Released in 10 ms batches instead, the burst's calls
 * started eight at a time, finished together and left connections idle in between: about 78 % of
 * the replicas' capacity was admitted instead of about 95 %, and a call queued behind a batch
 * waited a whole statement time for the next permit.
 */
const TICK_MS = 1;

/** Latencies of `count` overload calls made one at a time, ascending (failed ones left out). */
export async function unloadedLatencies(db: ResilientPool, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    try {
      await db.read(OVERLOAD_STATEMENT);
      latencies.push(performance.now() - start);
    } catch {
      // A failed probe says nothing about the unloaded latency.
    }
  }
  return latencies.sort((a, b) => a - b);
}

export interface BurstOptions {
  /** Arrivals per second. */
  ratePerSec: number;
  /** Most calls in flight at once. */
  maxOutstanding: number;
  sink: CallSink;
}

/** An open-loop burst of overload calls, from `start()` until `stop()`. */
export class OverloadBurst {
  /** Arrivals dropped because `maxOutstanding` calls were in flight. */
  notSent = 0;
  private outstanding = new Set<Promise<void>>();
  private stopping = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: ResilientPool,
    private readonly options: BurstOptions,
  ) {}

  start(): void {
    this.running = this.arrivals();
  }

  /** Stops the arrivals and waits for the calls in flight (each bounded by the pool's timeouts). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    await Promise.all(this.outstanding);
  }

  private async arrivals(): Promise<void> {
    const { ratePerSec, maxOutstanding } = this.options;
    const began = performance.now();
    let sent = 0;
    while (!this.stopping) {
      const due = Math.floor(((performance.now() - began) * ratePerSec) / 1000) - sent;
      for (let i = 0; i < due; i++) {
        sent++;
        if (this.outstanding.size >= maxOutstanding) {
          this.notSent++;
          continue;
        }
        const call = nextMacrotask()
          .then(() => this.call())
          .finally(() => this.outstanding.delete(call));
        this.outstanding.add(call);
      }
      await delay(TICK_MS);
    }
  }

  private async call(): Promise<void> {
    const { sink } = this.options;
    const start = sink.begin('overload');
    try {
      await this.db.read(OVERLOAD_STATEMENT);
      sink.finish('overload', start);
    } catch (err) {
      sink.finish('overload', start, describeFailure(err));
    }
  }
}
