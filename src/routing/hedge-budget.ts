/**
 * The hedge budget of hedged reads (see hedge.ts), the cap on the extra load they add: hedges
 * are capped at `percent` of the reads seen over a sliding window of `buckets` buckets, or at
 * `minHedges` per window when that is more (a quiet service still hedges). The larger of the
 * two rather than their sum, so that under load the cap is the share the option names. The
 * window slides when `rotate()` is called, once per bucket, by the pool's once-a-second timer.
 * Counting a read is one increment; the window is summed only when a hedge is asked for.
 */
export class HedgeBudget {
  private readonly reads: number[];
  private readonly hedges: number[];
  private index = 0;

  constructor(
    private readonly percent: number,
    private readonly minHedges: number,
    buckets = 10,
  ) {
    if (!Number.isInteger(buckets) || buckets < 1) {
      throw new RangeError(`Expected \`buckets\` to be a positive integer, got ${String(buckets)}`);
    }
    this.reads = new Array<number>(buckets).fill(0);
    this.hedges = new Array<number>(buckets).fill(0);
  }

  recordRead(): void {
    this.reads[this.index]!++;
  }

  /** Takes one hedge from the budget; false when the window's share is spent. */
  tryWithdraw(): boolean {
    let reads = 0;
    let hedges = 0;
    for (let i = 0; i < this.reads.length; i++) {
      reads += this.reads[i]!;
      hedges += this.hedges[i]!;
    }
    if (hedges + 1 > Math.max(this.minHedges, (reads * this.percent) / 100)) return false;
    this.hedges[this.index]!++;
    return true;
  }

  /** Advances the window by one bucket, forgetting the oldest. */
  rotate(): void {
    this.index = (this.index + 1) % this.reads.length;
    this.reads[this.index] = 0;
    this.hedges[this.index] = 0;
  }
}
