/**
 * Shedding by queue delay (`queue.maxQueueDelayMs`) for one gate: decides whether a call that
 * would have to wait is refused at once, from how long the queue has stood and how fast it drains.
 *
 * A count bound cannot tell a burst from overload; the wait can. A new call is refused when,
 * while the endpoint is completing calls, either
 * - the oldest waiter has already waited longer than the bound (the queue stands), or
 * - the call's own expected wait is longer: the waiters ahead of it, plus itself, times the mean
 *   time between permits coming back while calls waited (Little's law on the measured drain rate,
 *   so statements of mixed durations are measured as the mix they are).
 *
 * At twice an endpoint's capacity the first rule alone lets in as many calls as arrive while the
 * head is young, which wait about twice the bound; the second keeps the queue to what drains in
 * the bound. The drain rate is measured only between two permits that both came back to waiters
 * (the endpoint was the bottleneck throughout), so an idle spell does not read as a slow drain;
 * and it is forgotten a second after its last sample, so that the drain of an earlier overload
 * (of other statements, with other connections) is not held against today's calls. Until it has
 * been measured, only the first rule applies, and a burst on an idle endpoint waits.
 *
 * "Completing calls" means a permit came back within two mean statement times (the limit times
 * the mean gap: calls admitted together finish together, so permits come back in clusters up to
 * a statement time apart), or within the bound when that is longer. An endpoint that completes
 * nothing is hung or unreachable, not overloaded, and its waits are left to the acquire timeout
 * and the health monitor, whose errors say what happened.
 */

/** Weight of the newest gap in the mean: about the last 16 permits count. */
const SMOOTHING = 1 / 16;
/** A drain rate not sampled for this long (ms) is forgotten, and no longer gap is a sample. */
const FORGET_AFTER_MS = 1_000;

export class QueueDelayBound {
  /** When a permit last came back (performance.now()). */
  private releasedAt = Number.NEGATIVE_INFINITY;
  /** Whether calls waited when it did: the next gap then measures the drain. */
  private drainingAtLastRelease = false;
  /** Mean ms between permits coming back while calls waited; 0 until measured. */
  private meanGapMs = 0;
  /** When the mean last took a sample. */
  private sampledAt = Number.NEGATIVE_INFINITY;

  constructor(readonly boundMs: number) {}

  /** A permit came back at `now`, with `waiting` calls waiting for one. */
  released(now: number, waiting: number): void {
    const draining = waiting > 0;
    const gap = now - this.releasedAt;
    // A gap longer than the memory of the mean is an outage (a hang the health monitor did not
    // end), not a drain rate: held against the calls after it, it would refuse them for long.
    if (draining && this.drainingAtLastRelease && gap <= FORGET_AFTER_MS) {
      const mean = this.meanGap(now);
      this.meanGapMs = mean === 0 ? gap : mean + (gap - mean) * SMOOTHING;
      this.sampledAt = now;
    }
    this.drainingAtLastRelease = draining;
    this.releasedAt = now;
  }

  /**
   * The wait of a new call behind `waiting` others at `now`, by the measured drain; 0 while not
   * measured (never, or not in the last second).
   */
  expectedWaitMs(waiting: number, now: number): number {
    return (waiting + 1) * this.meanGap(now);
  }

  /**
   * Whether a new call is refused, with `waiting` calls waiting (the oldest for `oldestMs`) for
   * `limit` permits.
   */
  refuses(now: number, waiting: number, oldestMs: number, limit: number): boolean {
    if (waiting === 0 || !this.isCompleting(now, limit)) return false;
    return oldestMs > this.boundMs || this.expectedWaitMs(waiting, now) > this.boundMs;
  }

  private isCompleting(now: number, limit: number): boolean {
    return now - this.releasedAt <= Math.max(this.boundMs, 2 * limit * this.meanGap(now));
  }

  /** The mean gap, or 0 once it has gone a second without a sample. */
  private meanGap(now: number): number {
    return now - this.sampledAt > FORGET_AFTER_MS ? 0 : this.meanGapMs;
  }
}
