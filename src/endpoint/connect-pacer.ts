/**
 * Storm control for one endpoint: after an outage (declared down, or its circuit opened), new
 * connections are opened one at a time at first (one probe connection), then twice as many at
 * once after each round in which all of them connected (TCP's slow start, applied to connects),
 * up to the wrapped pool's `max`, when pacing ends. A failed connect starts again at one. So a
 * server that is coming back is not hit by every waiting caller's connect at once, and one that
 * is not back yet sees one attempt at a time rather than a burst per caller.
 *
 * Only opening a connection is paced: a call that finds an idle client takes it as usual. A call
 * that would open one beyond the allowance waits (`wait`) until a client comes back to the pool
 * (`clientReturned`) or an attempt settles; acquire.ts bounds the wait by the call's acquire
 * timeout and signal, and cancels it when the call is ended.
 *
 * Cost outside pacing: acquire.ts reads `active` on the path that opens connections only, never
 * on the one that takes an idle client; `clientReturned` is one comparison.
 */

/** `tryOpen` refused: the allowance is used up, wait. */
export const MUST_WAIT = -1;
/** `tryOpen` while not pacing: open freely, nothing to report. */
export const UNPACED = -2;

/** A waiting call; `cancel` ends the wait without waking it. */
export interface PacerWait {
  cancel(): void;
}

interface Waiter extends PacerWait {
  wake: () => void;
  cancelled: boolean;
}

export class ConnectPacer {
  /** Whether connects are paced now. */
  private pacing = false;
  /** Connects allowed in flight at once in the current round. */
  private allowance = 1;
  /** Paced connects in flight. */
  private opening = 0;
  /** Connects that succeeded in the current round. */
  private connected = 0;
  /** Counts outages: an attempt of an earlier one settles without touching the current round. */
  private epoch = 0;
  private waiters: Waiter[] = [];
  /** Calls that had to wait for the allowance since the pool was made (stats). */
  waited = 0;

  /**
   * @param max the wrapped pool's `max`: pacing ends once the allowance reaches it.
   * @param enabled false: `restart` does nothing, so nothing is ever paced.
   */
  constructor(
    private readonly max: number,
    private readonly enabled: boolean,
  ) {}

  /** Whether connects are paced now (read by acquire.ts before opening one). */
  get active(): boolean {
    return this.pacing;
  }

  /** Connects allowed in flight at once now, or null when not pacing (stats). */
  get currentAllowance(): number | null {
    return this.pacing ? this.allowance : null;
  }

  /** Calls waiting for the allowance. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * An outage began: from now on connects are paced, starting at one. Attempts in flight from
   * before are forgotten (they settle without effect); calls already waiting try again (one of
   * them may now open the first connection).
   */
  restart(): void {
    if (!this.enabled) return;
    this.pacing = true;
    this.allowance = 1;
    this.opening = 0;
    this.connected = 0;
    this.epoch++;
    this.wakeAll();
  }

  /**
   * A call is about to open a connection. Returns UNPACED when not pacing, MUST_WAIT when the
   * allowance is used up, else a ticket: hand it to `settled` once the connect is done, exactly
   * once.
   */
  tryOpen(): number {
    if (!this.pacing) return UNPACED;
    if (this.opening >= this.allowance) return MUST_WAIT;
    this.opening++;
    return this.epoch;
  }

  /**
   * The connect of `ticket` is done: `ok` when a client came. A round in which every allowed
   * connect succeeded doubles the allowance; a failure starts again at one. Waiters are woken to
   * try again either way (a failure frees a place too).
   */
  settled(ticket: number, ok: boolean): void {
    // Settled twice by a bug elsewhere: the count stays a count, never below zero.
    if (ticket !== this.epoch || !this.pacing || this.opening === 0) return;
    this.opening--;
    if (!ok) {
      this.allowance = 1;
      this.connected = 0;
    } else if (++this.connected >= this.allowance) {
      this.connected = 0;
      this.allowance *= 2;
      if (this.allowance >= this.max) this.pacing = false;
    }
    this.wakeAll();
  }

  /** Waits for the allowance or an idle client: `wake` is called once, unless cancelled first. */
  wait(wake: () => void): PacerWait {
    this.waited++;
    const waiter: Waiter = {
      wake,
      cancelled: false,
      cancel: () => {
        if (waiter.cancelled) return;
        waiter.cancelled = true;
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      },
    };
    this.waiters.push(waiter);
    return waiter;
  }

  /** A client went back to the pool (or was destroyed, freeing a place): waiters try again. */
  clientReturned(): void {
    if (this.waiters.length !== 0) this.wakeAll();
  }

  /**
   * Wakes every waiter once, in the order they came. A woken call that still cannot go waits
   * again, at the back of a new list, so a wake never loops.
   */
  private wakeAll(): void {
    const woken = this.waiters;
    if (woken.length === 0) return;
    this.waiters = [];
    for (const waiter of woken) {
      if (waiter.cancelled) continue;
      waiter.cancelled = true;
      waiter.wake();
    }
  }
}
