/** The hedge delay of hedged reads (see hedge.ts): fixed, or adaptive from the endpoint's p95. */
import type { ResolvedHedgeOptions } from '../options/hedge.js';

/** Recent latencies of an endpoint, in ms (the endpoint's LatencyWindow). */
export interface QuantileSource {
  /** The q-quantile over the recent window, or null when nothing was recorded. */
  quantile(q: number): number | null;
}

export type HedgeDelayOptions = Pick<
  ResolvedHedgeOptions,
  'delay' | 'quantile' | 'minDelayMs' | 'maxDelayMs'
>;

/**
 * How long a read waits before it is hedged: the fixed delay, or the first endpoint's recent
 * quantile clamped to [minDelayMs, maxDelayMs] (the ceiling while the endpoint has no recent
 * samples: hedging blind would send twice the reads of a fresh endpoint). A quantile costs a
 * walk over the whole histogram, so each endpoint's is computed at most once between two
 * `refresh()` calls (the pool's once-a-second timer's); a read costs a map lookup. The
 * ceiling of an endpoint with no samples is not kept: its first statements would otherwise make
 * it the delay for up to a second, which is exactly when a replica that froze after its first
 * answers most needs hedging.
 */
export class HedgeDelay {
  private readonly cached = new Map<QuantileSource, number>();

  constructor(private readonly options: HedgeDelayOptions) {}

  for(source: QuantileSource): number {
    const { delay } = this.options;
    if (delay !== 'adaptive') return delay;
    const known = this.cached.get(source);
    if (known !== undefined) return known;
    const { quantile, minDelayMs, maxDelayMs } = this.options;
    const measured = source.quantile(quantile);
    if (measured === null || !Number.isFinite(measured)) return maxDelayMs;
    // Whole ms: timers have no finer grain, and rounding up errs on the side of fewer hedges.
    const computed = Math.min(maxDelayMs, Math.max(minDelayMs, Math.ceil(measured)));
    this.cached.set(source, computed);
    return computed;
  }

  /** Forgets the computed delays: the next read of each endpoint computes its own again. */
  refresh(): void {
    this.cached.clear();
  }
}
