/**
 * The breaker's counting policy: a rolling window of successes and health failures, plus a
 * streak of consecutive failures. Kept apart from the state machine (opossum) so that a closed
 * circuit costs one increment per call instead of opossum's per-call promise, events and clock
 * reads (measured at about 0.6 µs per call; see docs/how-it-works.md).
 */
import type { HealthWindowSettings } from './types.js';

export class HealthWindow {
  private readonly successes: number[];
  private readonly failures: number[];
  private index = 0;
  private totalSuccesses = 0;
  private totalFailures = 0;
  private streak = 0;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly options: HealthWindowSettings) {
    this.successes = new Array(options.rollingCountBuckets).fill(0);
    this.failures = new Array(options.rollingCountBuckets).fill(0);
    this.timer = setInterval(
      () => this.rotate(),
      options.rollingCountTimeout / options.rollingCountBuckets,
    );
    this.timer.unref();
  }

  /** A call the dependency answered. Hot path: two stores. */
  success(): void {
    this.successes[this.index]!++;
    this.streak = 0;
  }

  /** A failure that counts against the dependency. Returns true when the circuit should open. */
  failure(): boolean {
    this.failures[this.index]!++;
    this.totalFailures++;
    this.streak++;
    const { consecutiveFailures, volumeThreshold, errorThresholdPercentage } = this.options;
    if (consecutiveFailures > 0 && this.streak >= consecutiveFailures) return true;
    const calls = this.calls();
    if (calls < volumeThreshold) return false;
    return (this.totalFailures / calls) * 100 > errorThresholdPercentage;
  }

  /** Calls counted in the window. */
  calls(): number {
    // Successes of the current bucket are not in the running total (kept to one increment).
    return this.totalSuccesses + this.successes[this.index]! + this.totalFailures;
  }

  /** Forgets everything: a circuit that closes again starts with a clean record. */
  reset(): void {
    this.successes.fill(0);
    this.failures.fill(0);
    this.totalSuccesses = 0;
    this.totalFailures = 0;
    this.streak = 0;
  }

  /** Stops the bucket timer. */
  stop(): void {
    clearInterval(this.timer);
  }

  private rotate(): void {
    this.totalSuccesses += this.successes[this.index]!;
    this.index = (this.index + 1) % this.successes.length;
    this.totalSuccesses -= this.successes[this.index]!;
    this.totalFailures -= this.failures[this.index]!;
    this.successes[this.index] = 0;
    this.failures[this.index] = 0;
  }
}
