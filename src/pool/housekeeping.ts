/**
 * The pool's background timers, all unref'd and all stopped by `end()`: the retry budget's window
 * slides once a second, the latency percentiles' window every 10 s, and the slow-call sweep
 * advances the endpoints' generation every `slowCallMs / 2` so that statements running too long
 * count against their circuits.
 */
import { type Endpoint, LATENCY_SLOT_MS } from '../endpoint/endpoint.js';
import type { BreakerOptions } from '../options/policy-types.js';
import type { RetryBudget } from '../retry/budget.js';

export class Housekeeping {
  private readonly timers: ReturnType<typeof setInterval>[] = [];

  constructor(
    budget: RetryBudget,
    endpoints: readonly Endpoint[],
    breaker: Required<BreakerOptions>,
  ) {
    this.every(1_000, () => budget.rotate());
    this.every(LATENCY_SLOT_MS, () => {
      for (const endpoint of endpoints) endpoint.rotateLatency();
    });
    if (breaker.enabled && breaker.slowCallMs > 0) {
      this.every(Math.max(1, Math.floor(breaker.slowCallMs / 2)), () => {
        for (const endpoint of endpoints) endpoint.sweep();
      });
    }
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  private every(ms: number, work: () => void): void {
    const timer = setInterval(work, ms);
    timer.unref();
    this.timers.push(timer);
  }
}
