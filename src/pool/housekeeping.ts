/**
 * The pool's background timers, all unref'd and all stopped by `end()`: the retry budget's window
 * slides once a second, the latency percentiles' window every 10 s, and the sweep advances the
 * endpoints' generation (the clock statements are stamped with when sent) so that statements
 * running past `breaker.slowCallMs` count against their circuits; with outlier ejection or slow
 * start on, the same sweep then lets the router decide who is silent and move the ramps on.
 */
import { type Endpoint, LATENCY_SLOT_MS } from '../endpoint/endpoint.js';
import type { BreakerOptions } from '../options/policy-types.js';
import type { RetryBudget } from '../retry/budget.js';

/** The sweep: how often, and what routing does after each (outlier ejection, slow start). */
export interface SweepSchedule {
  /** Period in ms (options/outlier.ts `sweepIntervalMs`); undefined: no sweep at all. */
  intervalMs: number | undefined;
  /** Runs after the endpoints' generations moved on; `now` is the wall clock. */
  routing?: { sweep(now: number): void };
}

export class Housekeeping {
  private readonly timers: ReturnType<typeof setInterval>[] = [];

  /**
   * @param sweep when left out, the sweep runs every `breaker.slowCallMs / 2` for slow calls
   *   alone (the endpoints' slow-call threshold is then three generations).
   */
  constructor(
    budget: RetryBudget,
    endpoints: readonly Endpoint[],
    breaker: Required<BreakerOptions>,
    sweep?: SweepSchedule,
  ) {
    this.every(1_000, () => budget.rotate());
    this.every(LATENCY_SLOT_MS, () => {
      for (const endpoint of endpoints) endpoint.rotateLatency();
    });
    const intervalMs =
      sweep !== undefined
        ? sweep.intervalMs
        : breaker.enabled && breaker.slowCallMs > 0
          ? Math.max(1, Math.floor(breaker.slowCallMs / 2))
          : undefined;
    if (intervalMs === undefined) return;
    const routing = sweep?.routing;
    this.every(intervalMs, () => {
      for (const endpoint of endpoints) endpoint.sweep();
      routing?.sweep(Date.now());
    });
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  /** Runs `work` every `ms`, unref'd, until stop(). */
  every(ms: number, work: () => void): void {
    const timer = setInterval(work, ms);
    timer.unref();
    this.timers.push(timer);
  }
}
