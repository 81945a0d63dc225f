/**
 * Caps retries at `percent` of the calls seen in a sliding window, plus a small reserve, so that
 * during an outage retries add at most that share of load (Finagle's RetryBudget). The window
 * slides when `rotate()` is called, once per bucket, by the pool's housekeeping timer; counting a
 * call is a single increment.
 */
export class RetryBudget {
  private readonly calls: number[];
  private readonly retries: number[];
  private index = 0;
  private windowCalls = 0;
  private windowRetries = 0;
  /** Retries refused because the budget was spent, since the pool was made. */
  refusals = 0;

  constructor(
    private readonly percent: number,
    private readonly reserve: number,
    buckets = 10,
  ) {
    this.calls = new Array(buckets).fill(0);
    this.retries = new Array(buckets).fill(0);
  }

  recordCall(): void {
    this.windowCalls++;
  }

  /** Takes one retry from the budget; false when the budget is spent. */
  tryWithdraw(): boolean {
    if (this.windowRetries + 1 > this.reserve + (this.windowCalls * this.percent) / 100) {
      this.refusals++;
      return false;
    }
    this.windowRetries++;
    this.retries[this.index]!++;
    return true;
  }

  /** Advances the window by one bucket, forgetting the oldest. */
  rotate(): void {
    // Calls are counted into the window total only (one increment on the hot path); attribute
    // those since the last rotation to the bucket being closed.
    const attributed = this.calls.reduce((a, b) => a + b, 0);
    this.calls[this.index] = this.windowCalls - attributed;
    this.index = (this.index + 1) % this.calls.length;
    this.windowCalls -= this.calls[this.index]!;
    this.windowRetries -= this.retries[this.index]!;
    this.calls[this.index] = 0;
    this.retries[this.index] = 0;
  }
}
