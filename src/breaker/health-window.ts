/**
 * The breaker's counting policy: a rolling window of successes and health failures, plus a
 * streak of consecutive failures. Kept apart from the state machine (opossum) so that a closed
 * circuit costs one increment per call instead of opossum's per-call promise, events and clock
 * reads (measured at about 0.6 µs per call; see docs/how-it-works.md).
 *
 * One event is one signal. A network event (a load balancer restarting, a NAT table flushed)
 * breaks every connection open at that moment: the calls in flight on them, and the idle clients
 * taken from the pool before their errors were read, fail within a millisecond of each other.
 * Counted one by one, those N failures would be a streak of N and open the circuit of a server
 * that is fine (and then of the next one, hit by the same event). So every counted failure
 * advances a serial, `signals`; a connection remembers the serial it was opened under (the
 * owner stamps it), and a lost connection that was already open when the latest failure was
 * counted, with the streak still running, is an echo of that failure and counts for nothing.
 * A server that fails every new call still opens the circuit at once: new connections, failed
 * connects and failures of any other kind are never echoes.
 */
import type { HealthWindowSettings } from './types.js';

export class HealthWindow {
  private readonly successes: number[];
  private readonly failures: number[];
  private index = 0;
  private totalSuccesses = 0;
  private totalFailures = 0;
  private streak = 0;
  /** Failures counted so far (never reset): the serial a connection is stamped with at birth. */
  private counted = 0;
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

  /**
   * The serial of the latest counted failure: a connection opened now is stamped with it, and
   * its loss is then an echo only of failures counted after this.
   */
  get signals(): number {
    return this.counted;
  }

  /**
   * A failure that counts against the dependency. Returns true when the circuit should open.
   * `connectionSignals`: for a connection lost, the `signals` its connection was stamped with;
   * when older than the latest counted failure, and the streak is running, the loss is an echo
   * of that failure and nothing is counted (see the file's comment).
   */
  failure(connectionSignals?: number): boolean {
    if (this.isEcho(connectionSignals)) return false;
    this.counted++;
    this.failures[this.index]!++;
    this.totalFailures++;
    this.streak++;
    const { consecutiveFailures, volumeThreshold, errorThresholdPercentage } = this.options;
    if (consecutiveFailures > 0 && this.streak >= consecutiveFailures) return true;
    const calls = this.calls();
    if (calls < volumeThreshold) return false;
    return (this.totalFailures / calls) * 100 > errorThresholdPercentage;
  }

  /** Whether a lost connection stamped `connectionSignals` is an echo of the latest failure. */
  isEcho(connectionSignals: number | undefined): boolean {
    return connectionSignals !== undefined && this.streak > 0 && connectionSignals < this.counted;
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
