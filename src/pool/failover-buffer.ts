/**
 * The failover buffer: calls that have sent nothing wait here, in FIFO order, while the primary is
 * being replaced, and are let out oldest first once a primary can take them. Each wait is bounded
 * three ways: by `bufferMs` from when the call first entered (FailoverTimeoutError), by the
 * call's own signal (its AbortedError or TimeoutError), and by `drain()` at end(). A full buffer
 * refuses a new call at once (FailoverBufferFullError).
 *
 * A call let out that finds the primary still refusing comes back with its place: it keeps its
 * turn ahead of the calls that came after it, and its bound keeps counting from its first entry.
 * Such a return is not refused when the buffer is full: the call already had a place.
 *
 * This file is the state machine only: when to hold a call and when to let calls out is the call
 * path's decision. Timers are unref'd and none outlives its wait.
 */
import {
  abortError,
  FailoverBufferFullError,
  FailoverTimeoutError,
  withoutStack,
} from '../errors.js';
import { markNotSent } from '../retry/policy.js';

/** A call's place in the buffer, kept across its returns: its turn and when its bound started. */
export interface BufferPlace {
  readonly ticket: number;
  /** When the call first entered the buffer (`now()`). */
  readonly since: number;
}

export interface FailoverBufferOptions {
  /** The endpoint calls wait for, named in the errors. */
  endpoint: string;
  /** Longest wait per call, from its first entry, in ms. */
  bufferMs: number;
  /** Most calls held at once. */
  maxBuffered: number;
  /** The clock. @default Date.now */
  now?: () => number;
}

/** Counters of the buffer; plain numbers, for stats(). None ever decreases but `buffered`. */
export interface FailoverBufferStats {
  /** Calls held now. */
  buffered: number;
  /** Calls that entered the buffer (each once, however often it came back). */
  bufferedTotal: number;
  /** Returns: calls let out that found the primary still refusing and came back. */
  requeued: number;
  /** Waits that ended with the call let out to the primary. */
  released: number;
  /** Waits that ended with FailoverTimeoutError (`bufferMs` ran out). */
  expired: number;
  /** Waits that ended with the call's own signal or timeout. */
  aborted: number;
  /** Calls refused at once because the buffer was full. */
  refusedFull: number;
  /** Waits ended by `drain()` (end()). */
  drained: number;
}

interface Held {
  readonly place: BufferPlace;
  readonly cause: unknown;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (place: BufferPlace) => void;
  readonly reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  onAbort: (() => void) | undefined;
}

export class FailoverBuffer {
  private readonly endpoint: string;
  private readonly bufferMs: number;
  private readonly maxBuffered: number;
  private readonly now: () => number;
  /** Held calls by ticket, oldest first. */
  private queue: Held[] = [];
  private lastTicket = 0;
  /** Set by `drain()`: the error every later `hold()` gets. */
  private closedWith: (() => Error) | undefined;
  private readonly counts: Omit<FailoverBufferStats, 'buffered'> = {
    bufferedTotal: 0,
    requeued: 0,
    released: 0,
    expired: 0,
    aborted: 0,
    refusedFull: 0,
    drained: 0,
  };

  constructor(options: FailoverBufferOptions) {
    this.endpoint = options.endpoint;
    this.bufferMs = options.bufferMs;
    this.maxBuffered = options.maxBuffered;
    this.now = options.now ?? Date.now;
  }

  /** Calls held now. */
  get size(): number {
    return this.queue.length;
  }

  stats(): FailoverBufferStats {
    return { buffered: this.queue.length, ...this.counts };
  }

  /**
   * Holds a call until `release()` lets it out; resolves with its place, to pass back if it must
   * wait again. `cause` is why it waits (the refusal), kept as the cause of FailoverTimeoutError
   * and FailoverBufferFullError. `place` is given when the call comes back: it keeps its turn and
   * the bound that started at its first entry.
   */
  hold(cause: unknown, signal: AbortSignal | undefined, place?: BufferPlace): Promise<BufferPlace> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith());
    if (place === undefined) {
      // Never entered, so counted nowhere.
      if (signal?.aborted) return Promise.reject(markNotSent(abortError(undefined, signal)));
      if (this.queue.length >= this.maxBuffered) {
        this.counts.refusedFull++;
        return Promise.reject(this.fullError(cause));
      }
      place = { ticket: ++this.lastTicket, since: this.now() };
      this.counts.bufferedTotal++;
    } else {
      this.counts.requeued++;
      if (signal?.aborted) {
        this.counts.aborted++;
        return Promise.reject(markNotSent(abortError(undefined, signal)));
      }
    }
    const leftMs = place.since + this.bufferMs - this.now();
    if (leftMs <= 0) {
      this.counts.expired++;
      return Promise.reject(this.timeoutError(cause));
    }
    const entered = place;
    return new Promise<BufferPlace>((resolve, reject) => {
      const held: Held = {
        place: entered,
        cause,
        signal,
        resolve,
        reject,
        timer: undefined,
        onAbort: undefined,
      };
      held.timer = setTimeout(() => {
        if (!this.remove(held)) return;
        this.counts.expired++;
        reject(this.timeoutError(cause));
      }, leftMs);
      held.timer.unref?.();
      if (signal !== undefined) {
        held.onAbort = () => {
          if (!this.remove(held)) return;
          this.counts.aborted++;
          reject(markNotSent(abortError(undefined, signal)));
        };
        signal.addEventListener('abort', held.onAbort, { once: true });
      }
      this.insert(held);
    });
  }

  /**
   * Lets out up to `limit` calls, oldest first; each promise of `hold()` resolves in that order.
   * Returns how many were let out.
   */
  release(limit = Number.POSITIVE_INFINITY): number {
    // `limit > 0` is false for NaN too: a bad count lets nobody out rather than everybody.
    if (!(limit > 0) || this.queue.length === 0) return 0;
    const count = Math.min(Math.floor(limit), this.queue.length);
    if (count === 0) return 0;
    const out = this.queue.splice(0, count);
    for (const held of out) {
      this.settle(held);
      this.counts.released++;
      held.resolve(held.place);
    }
    return count;
  }

  /**
   * Fails every held call with `makeError()` (end()): nothing of theirs was sent. The buffer is
   * closed: a later `hold()` is refused with `makeError()` too.
   */
  drain(makeError: () => Error): void {
    this.closedWith ??= makeError;
    const out = this.queue;
    this.queue = [];
    for (const held of out) {
      this.settle(held);
      this.counts.drained++;
      held.reject(makeError());
    }
  }

  /** Inserts by ticket: a newcomer goes last, a call that comes back before those after it. */
  private insert(held: Held): void {
    const { queue } = this;
    const ticket = held.place.ticket;
    let i = queue.length;
    while (i > 0 && queue[i - 1]!.place.ticket > ticket) i--;
    queue.splice(i, 0, held);
  }

  /** Takes a held call out of the queue; false when it had already left (released, drained). */
  private remove(held: Held): boolean {
    const i = this.queue.indexOf(held);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    this.settle(held);
    return true;
  }

  private settle(held: Held): void {
    if (held.timer !== undefined) clearTimeout(held.timer);
    held.timer = undefined;
    if (held.onAbort !== undefined) held.signal?.removeEventListener('abort', held.onAbort);
    held.onAbort = undefined;
  }

  // Stackless: during an outage these come by the hundred at once, and a stack would point into
  // a timer, telling nothing the code and cause do not.
  private timeoutError(cause: unknown): FailoverTimeoutError {
    return markNotSent(
      withoutStack(() => new FailoverTimeoutError(this.endpoint, this.bufferMs, cause)),
    );
  }

  private fullError(cause: unknown): FailoverBufferFullError {
    return markNotSent(
      withoutStack(() => new FailoverBufferFullError(this.endpoint, this.maxBuffered, cause)),
    );
  }
}
