/**
 * The race of a hedged read (see hedge.ts): two attempts, each with an abort signal of its own
 * that follows the caller's signal; the first success wins and the loser is aborted, which the
 * endpoint's pipeline turns into a CancelRequest and a destroyed connection. Generic: it knows
 * nothing of endpoints, only of attempts that honour their signal.
 *
 * A side's signal is a LightAbortSignal (endpoint/abort-signal-like.ts), made for each side:
 * Node's AbortController costs about 2 µs to build and its EventTarget about half a microsecond
 * per listener added or removed, which a hedged read paid four times on its first side alone.
 */
import { type AbortSignalLike, LightAbortSignal } from '../endpoint/abort-signal-like.js';

/** One side of the race: starts an attempt that honours `signal`. */
export type HedgeAttempt<T> = (signal: AbortSignalLike) => Promise<T>;

/** What the race tells its owner; all optional, each called at most once. */
export interface HedgeEvents {
  /** The second attempt's answer was taken. */
  secondWon?(): void;
  /** Both attempts failed; the race rejects with `firstError`. */
  bothFailed?(firstError: unknown, secondError: unknown): void;
  /** The loser was still running at the end of its grace and was aborted. */
  loserCancelled?(): void;
}

/**
 * The reason a losing attempt is aborted with. Shared: it only ever becomes the `cause` of the
 * loser's AbortedError, which nobody sees (the race has settled with the winner's answer).
 */
export const LOST_THE_RACE: Error = Object.freeze(
  new Error('another attempt of this read answered first'),
);

const NOT_STARTED = 0;
const RUNNING = 1;
const ANSWERED = 2;
const FAILED = 3;
type SideState = typeof NOT_STARTED | typeof RUNNING | typeof ANSWERED | typeof FAILED;

/**
 * Runs `first` now and, if it has not settled `delayMs` later, `second` too; settles with the
 * first success of either. `second` is called when the delay has passed and may decline by
 * returning undefined (no budget, nowhere to send it): the race then waits for `first` alone.
 *
 * - A failure of `first` before the hedge started settles the race with that failure at once,
 *   and no hedge is sent: the call path's retry rule decides what happens next.
 * - Once both run, a failure of either waits for the other: if `first` fails after the hedge
 *   started, the hedge's answer is taken.
 * - Both failed: the race rejects with `first`'s error. That is the error the read would have
 *   had unhedged, which the retry rule judges against the endpoint it happened on; the hedge's
 *   own failure goes to `events.bothFailed`.
 * - The loser (still running when the other succeeded) may go on for `graceMs` to finish on its
 *   own; still running then, it is aborted, exactly once, with LOST_THE_RACE, which cancels it
 *   on its server. Its settlement is handled here and is never an unhandled rejection. Why not
 *   abort it at once (`graceMs` 0): see `cancelAfterMs` in options/hedge-types.ts. The grace
 *   ends early when `lifetime` (the pool's) aborts: `end()` waits for no loser.
 * - The caller's `signal`, while the race runs, aborts both sides with its reason, so that each
 *   fails as an unhedged attempt would (TimeoutError for a deadline, AbortedError otherwise);
 *   the race then rejects with `first`'s error. No hedge starts once it has fired.
 */
export function hedge<T>(
  first: HedgeAttempt<T>,
  second: (signal: AbortSignalLike) => Promise<T> | undefined,
  delayMs: number,
  signal: AbortSignal | undefined,
  events?: HedgeEvents,
  graceMs = 0,
  lifetime?: AbortSignal,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    new HedgeRace(second, signal, events, graceMs, lifetime, resolve, reject).start(first, delayMs);
  });
}

/** The delay passed with the first still running (settling clears the timer). */
function fire(race: { fire(): void }): void {
  race.fire();
}

/** The loser's grace ran out (its settling clears the timer). */
function cancelLoser(race: { cancelLoser(): void }): void {
  race.cancelLoser();
}

/**
 * The state of one race. A side's signal is dropped as soon as that side settles: nothing aborts
 * an attempt that has already settled.
 */
class HedgeRace<T> {
  private firstSide: LightAbortSignal | undefined = new LightAbortSignal();
  private secondSide: LightAbortSignal | undefined;
  private firstState: SideState = RUNNING;
  private secondState: SideState = NOT_STARTED;
  private firstError: unknown;
  private secondError: unknown;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private onCallerAbort: (() => void) | undefined;
  private settled = false;
  private graceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set while a loser has its grace and the pool's lifetime is listened to. */
  private onEnd: (() => void) | undefined;

  constructor(
    private readonly second: (signal: AbortSignalLike) => Promise<T> | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly events: HedgeEvents | undefined,
    private readonly graceMs: number,
    private readonly lifetime: AbortSignal | undefined,
    private readonly resolve: (value: T) => void,
    private readonly reject: (err: unknown) => void,
  ) {}

  start(first: HedgeAttempt<T>, delayMs: number): void {
    const side = this.firstSide as LightAbortSignal;
    const signal = this.signal;
    if (signal?.aborted) {
      // The attempt sees an aborted signal and fails as an unhedged one would; no hedge.
      side.abort(signal.reason);
    } else {
      if (signal !== undefined) {
        this.onCallerAbort = () => this.callerAborted(signal.reason);
        signal.addEventListener('abort', this.onCallerAbort, { once: true });
      }
      this.timer = setTimeout(fire, delayMs, this);
    }
    attempt(first, side).then(
      (value) => this.firstAnswered(value),
      (err: unknown) => this.firstFailed(err),
    );
  }

  fire(): void {
    this.timer = undefined;
    const side = new LightAbortSignal();
    const started = attemptOrDecline(this.second, side);
    // Declined: the first runs alone.
    if (started === undefined) return;
    this.secondSide = side;
    this.secondState = RUNNING;
    started.then(
      (value) => this.secondAnswered(value),
      (err: unknown) => this.secondFailed(err),
    );
  }

  /** The grace of a loser still running after the winner's answer ended: abort it. */
  cancelLoser(): void {
    this.endGrace();
    const loser = this.firstSide ?? this.secondSide;
    if (loser === undefined) return;
    loser.abort(LOST_THE_RACE);
    this.events?.loserCancelled?.();
  }

  private firstAnswered(value: T): void {
    this.firstState = ANSWERED;
    this.firstSide = undefined;
    // Settled already: the hedge won, and this loser answered within its grace.
    if (this.settled) this.loserSettled();
    else this.win(value, this.secondState === RUNNING);
  }

  private secondAnswered(value: T): void {
    this.secondState = ANSWERED;
    this.secondSide = undefined;
    if (this.settled) {
      this.loserSettled();
      return;
    }
    this.win(value, this.firstState === RUNNING);
    this.events?.secondWon?.();
  }

  private firstFailed(err: unknown): void {
    this.firstState = FAILED;
    this.firstError = err;
    this.firstSide = undefined;
    // Settled: this is the loser, failed or aborted. A hedge running: its answer is awaited.
    if (this.settled) this.loserSettled();
    if (this.settled || this.secondState === RUNNING) return;
    if (this.secondState === FAILED) this.events?.bothFailed?.(err, this.secondError);
    this.lose(err);
  }

  private secondFailed(err: unknown): void {
    this.secondState = FAILED;
    this.secondError = err;
    this.secondSide = undefined;
    // Settled: this is the loser, failed or aborted. The first running: it may still answer.
    if (this.settled) this.loserSettled();
    if (this.settled || this.firstState === RUNNING) return;
    this.events?.bothFailed?.(this.firstError, err);
    this.lose(this.firstError);
  }

  private loserSettled(): void {
    this.endGrace();
  }

  private endGrace(): void {
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    if (this.onEnd !== undefined) {
      this.lifetime?.removeEventListener('abort', this.onEnd);
      this.onEnd = undefined;
    }
  }

  /** The loser may go on for `graceMs`, unless the pool is ending (or ends meanwhile). */
  private startGrace(): void {
    const lifetime = this.lifetime;
    if (this.graceMs === 0 || lifetime?.aborted === true) {
      this.cancelLoser();
      return;
    }
    this.graceTimer = setTimeout(cancelLoser, this.graceMs, this);
    if (lifetime !== undefined) {
      this.onEnd = () => this.cancelLoser();
      lifetime.addEventListener('abort', this.onEnd, { once: true });
    }
  }

  private callerAborted(reason: unknown): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // Each running side fails with the caller's reason; the race settles through their failures.
    this.firstSide?.abort(reason);
    this.secondSide?.abort(reason);
  }

  /** `loserRunning`: the other side still runs, and gets its grace. */
  private win(value: T, loserRunning: boolean): void {
    this.end();
    if (loserRunning) this.startGrace();
    this.resolve(value);
  }

  private lose(err: unknown): void {
    this.end();
    this.reject(err);
  }

  private end(): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.onCallerAbort !== undefined) {
      this.signal?.removeEventListener('abort', this.onCallerAbort);
    }
  }
}

/** Starts the hedge; undefined when it declines; a synchronous throw becomes its rejection. */
function attemptOrDecline<T>(
  run: (signal: AbortSignalLike) => Promise<T> | undefined,
  signal: AbortSignalLike,
): Promise<T> | undefined {
  try {
    return run(signal);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Starts an attempt; a synchronous throw becomes its rejection. */
function attempt<T>(run: HedgeAttempt<T>, signal: AbortSignalLike): Promise<T> {
  try {
    return run(signal);
  } catch (err) {
    return Promise.reject(err);
  }
}
