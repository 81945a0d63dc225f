/**
 * Shedding by queue delay (`queue.maxQueueDelayMs`) for one gate: decides whether a call that
 * would have to wait is refused at once, from how long the queue has stood and how fast it drains.
 *
 * A count bound cannot tell a burst from overload; the wait can. A new call is refused when,
 * while the endpoint is completing calls, either
 * - the oldest waiter has already waited longer than the bound (the queue stands), or
 * - the call's own expected wait is longer: the waiters ahead of it, plus itself, times the time
 *   between permits coming back. That gap is the mean measured while calls waited (Little's law
 *   on the measured drain rate, so statements of mixed durations are measured as the mix they
 *   are), or, when longer, the current one: how long the queue has stood with no permit back
 *   since (the shorter of the time since the last permit came back and the oldest waiter's wait).
 *   The current gap is what tells the start of an overload, before any drain was measured, and a
 *   pause between permits that come back in clusters: a queue of several calls behind permits
 *   that have not come back for a while will not drain in the bound, whatever the mean says.
 *
 * At twice an endpoint's capacity the first rule alone lets in as many calls as arrive while the
 * head is young, which wait about twice the bound; the second keeps the queue to what drains in
 * the bound. The drain rate is measured only between two permits that both came back to waiters
 * (the endpoint was the bottleneck throughout), so an idle spell does not read as a slow drain;
 * and it is forgotten a second after its last sample, so that the drain of an earlier overload
 * (of other statements, with other connections) is not held against today's calls.
 *
 * "Completing calls" means a permit came back within two mean statement times (the limit times
 * the mean gap: calls admitted together finish together, so permits come back in clusters up to
 * a statement time apart), or within twice the longest statement the endpoint answered recently
 * (`served`, halved every second: statements that long are running, not hung), or within the
 * bound, whichever is longest. An endpoint that completes nothing for longer is hung or
 * unreachable, not overloaded, and its waits are left to the acquire timeout and the health
 * monitor, whose errors say what happened. The longest statement is what lets the rules apply
 * from an overload's first statement time: the permits all taken by statements of 20 ms, nothing
 * comes back for 20 ms, and without it that would read as a hang while the queue filled.
 */

/** Weight of the newest gap in the mean: about the last 16 permits count. */
const SMOOTHING = 1 / 16;
/** A drain rate not sampled for this long (ms) is forgotten, and no longer gap is a sample. */
const FORGET_AFTER_MS = 1_000;
/** The longest recent statement time is halved every this many ms. */
const LONGEST_HALF_LIFE_MS = 1_000;

export class QueueDelayBound {
  /** When a permit last came back (performance.now()). */
  private releasedAt = Number.NEGATIVE_INFINITY;
  /** Whether calls waited when it did: the next gap then measures the drain. */
  private drainingAtLastRelease = false;
  /** Mean ms between permits coming back while calls waited; 0 until measured. */
  private meanGapMs = 0;
  /** When the mean last took a sample. */
  private sampledAt = Number.NEGATIVE_INFINITY;
  /** The longest statement time answered recently (ms), as of `longestAt`. */
  private longestMs = 0;
  private longestAt = Number.NEGATIVE_INFINITY;

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

  /** A statement answered `ms` after it was sent, at `now`. */
  served(ms: number, now: number): void {
    if (ms >= this.longest(now)) {
      this.longestMs = ms;
      this.longestAt = now;
    }
  }

  /**
   * The wait of a new call behind `waiting` others at `now`, the oldest of them waiting for
   * `oldestMs`: one gap per call, the mean gap or the current one, whichever is longer (0 when
   * nobody waits and no drain was measured in the last second).
   */
  expectedWaitMs(waiting: number, now: number, oldestMs = 0): number {
    const current = waiting === 0 ? 0 : Math.min(now - this.releasedAt, oldestMs);
    return (waiting + 1) * Math.max(this.meanGap(now), current);
  }

  /**
   * Whether a new call is refused, with `waiting` calls waiting (the oldest for `oldestMs`) for
   * `limit` permits.
   */
  refuses(now: number, waiting: number, oldestMs: number, limit: number): boolean {
    if (waiting === 0 || !this.isCompleting(now, limit)) return false;
    return oldestMs > this.boundMs || this.expectedWaitMs(waiting, now, oldestMs) > this.boundMs;
  }

  private isCompleting(now: number, limit: number): boolean {
    const statementTime = Math.max(limit * this.meanGap(now), this.longest(now));
    return now - this.releasedAt <= Math.max(this.boundMs, 2 * statementTime);
  }

  /** The longest recent statement time, halved every LONGEST_HALF_LIFE_MS since it was seen. */
  private longest(now: number): number {
    const age = now - this.longestAt;
    return age <= 0 ? this.longestMs : this.longestMs * 2 ** (-age / LONGEST_HALF_LIFE_MS);
  }

  /** The mean gap, or 0 once it has gone a second without a sample. */
  private meanGap(now: number): number {
    return now - this.sampledAt > FORGET_AFTER_MS ? 0 : this.meanGapMs;
  }
}
