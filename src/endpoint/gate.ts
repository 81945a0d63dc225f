/**
 * The bounded wait queue in front of one endpoint: at most `limit` calls hold a permit (the
 * wrapped pool's size, `maxConcurrent`, unless changed), at most `maxWaiting` wait for one in FIFO
 * order, and no wait outlasts its deadline or its
 * caller's AbortSignal. Keeping pg's own (unbounded, timer-less by default) queue empty is the
 * point: overload is refused here in microseconds instead of piling up inside pg.
 *
 * The number of permits can change at run time (`setLimit`, driven by the adaptive limit): a
 * raise hands the new permits to waiters at once, oldest first; a cut takes effect as permits come
 * back, never by taking one from a call that holds it. The limit stays between 1 and
 * `maxConcurrent` (the wrapped pool's size: more permits would only queue inside pg).
 *
 * With `maxQueueDelayMs`, the queue is also full by its wait (queue-delay.ts): a call that would
 * wait longer than that, while the endpoint completes calls, is refused at once, so under
 * overload admitted calls keep their latency and the excess is refused in microseconds, however
 * long `maxWaiting` is.
 *
 * The fast path (a permit is free and nobody waits) is synchronous and allocates nothing.
 */
import { AcquireTimeoutError, abortError, QueueFullError, withoutStack } from '../errors.js';
import type { AbortSignalLike } from './abort-signal-like.js';
import { QueueDelayBound } from './queue-delay.js';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignalLike | undefined;
  onAbort: (() => void) | undefined;
  /** Set once the waiter got a permit or gave up; such entries are skipped, then dropped. */
  done: boolean;
  /** When it joined the queue (performance.now()); only kept with a delay bound. */
  queuedAt: number;
}

export interface GateOptions {
  /** Endpoint name for errors. */
  name: string;
  maxConcurrent: number;
  maxWaiting: number;
  /** Longest wait in the queue, in ms. */
  acquireTimeout: number;
  /** The longest wait a new call may expect before it is refused instead, in ms; 0: off. */
  maxQueueDelayMs?: number;
}

export class Gate {
  readonly name: string;
  /** The most permits there can be: the wrapped pool's size. */
  readonly maxConcurrent: number;
  readonly maxWaiting: number;
  readonly acquireTimeout: number;
  /** Set with `maxQueueDelayMs`: the fast path then pays one check of this field. */
  private readonly delayBound: QueueDelayBound | undefined;
  /** Permits held. Above `current` for a while after a cut, until enough come back. */
  private held = 0;
  /** Permits there are now, from 1 to `maxConcurrent`. */
  private current: number;
  /** FIFO of waiters; `head` indexes the oldest entry still stored. */
  private queue: Waiter[] = [];
  private head = 0;
  private live = 0;
  /** Set only while someone awaits `idle()` (end() draining). */
  private onIdle: (() => void) | undefined;

  constructor(options: GateOptions) {
    this.name = options.name;
    this.maxConcurrent = options.maxConcurrent;
    this.maxWaiting = options.maxWaiting;
    this.acquireTimeout = options.acquireTimeout;
    const bound = options.maxQueueDelayMs ?? 0;
    this.delayBound = bound === 0 ? undefined : new QueueDelayBound(bound);
    this.current = options.maxConcurrent;
  }

  /** Calls holding a permit. */
  get inUse(): number {
    return this.held;
  }

  /** Permits there are now (`maxConcurrent` unless `setLimit` changed it). */
  get limit(): number {
    return this.current;
  }

  /**
   * Changes the number of permits to `limit`, rounded down and kept within 1 and
   * `maxConcurrent`. A raise lets waiters in at once, oldest first; a cut takes no permit back
   * from a call holding one, it only holds back the permits that come back until fewer than the
   * new limit are held. Not a number: ignored.
   */
  setLimit(limit: number): void {
    if (Number.isNaN(limit)) return;
    this.current = Math.min(this.maxConcurrent, Math.max(1, Math.floor(limit)));
    while (this.live !== 0 && this.held < this.current) this.grantOldest();
  }

  /** Calls waiting for a permit. */
  get waiting(): number {
    return this.live;
  }

  /** Whether a new call would be let in now or queued (not refused as queue-full). */
  get canAdmit(): boolean {
    return (this.held < this.current && this.live === 0) || !this.isFull;
  }

  /** Whether a new waiter would be refused: by count, or by its expected wait. */
  get isFull(): boolean {
    if (this.live >= this.maxWaiting) return true;
    const bound = this.delayBound;
    if (bound === undefined || this.live === 0) return false;
    const now = performance.now();
    return bound.refuses(now, this.live, this.queueDelay(now), this.current);
  }

  /**
   * How long the oldest waiter has waited, in ms; 0 when nobody waits or without
   * `maxQueueDelayMs` (the gate then keeps no arrival times).
   */
  queueDelay(now: number = performance.now()): number {
    if (this.delayBound === undefined) return 0;
    const oldest = this.oldestWaiter();
    return oldest === undefined ? 0 : now - oldest.queuedAt;
  }

  /** A stackless QueueFullError for this gate, saying which bound refused the call. */
  fullError(): QueueFullError {
    const bound = this.delayBound;
    if (this.live >= this.maxWaiting || bound === undefined) {
      return withoutStack(() => new QueueFullError(this.name, this.maxWaiting));
    }
    const now = performance.now();
    const delay = {
      waitedMs: this.queueDelay(now),
      expectedMs: bound.expectedWaitMs(this.live, now, this.queueDelay(now)),
      maxQueueDelayMs: bound.boundMs,
    };
    return withoutStack(() => new QueueFullError(this.name, this.maxWaiting, delay));
  }

  private oldestWaiter(): Waiter | undefined {
    for (let i = this.head; i < this.queue.length; i++) {
      const waiter = this.queue[i]!;
      if (!waiter.done) return waiter;
    }
    return undefined;
  }

  /**
   * A statement answered `ms` after it was sent (at `now`): the delay bound's measure of how long
   * statements here run. Without `maxQueueDelayMs`, nothing.
   */
  served(ms: number, now: number): void {
    this.delayBound?.served(ms, now);
  }

  /** Takes a permit at once if one is free and nobody is ahead in the queue. */
  tryAcquire(): boolean {
    if (this.held < this.current && this.live === 0) {
      this.held++;
      return true;
    }
    return false;
  }

  /**
   * Waits for a permit. Rejects at once with QueueFullError when `maxWaiting` calls already wait,
   * with AcquireTimeoutError after `timeoutMs`, and with AbortedError when `signal` fires; a
   * waiter that gives up frees its place in the queue immediately.
   */
  acquire(signal?: AbortSignalLike, timeoutMs: number = this.acquireTimeout): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(abortError(this.name, signal));
    if (this.isFull) return Promise.reject(this.fullError());
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
        done: false,
        queuedAt: this.delayBound === undefined ? 0 : performance.now(),
      };
      waiter.timer = setTimeout(
        () => this.giveUp(waiter, new AcquireTimeoutError(this.name, timeoutMs)),
        timeoutMs,
      );
      if (signal) {
        waiter.onAbort = () => this.giveUp(waiter, abortError(this.name, signal));
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.live++;
    });
  }

  /**
   * Returns a permit: to the oldest live waiter if any and the limit (perhaps just cut) allows
   * it, else to the free count. A release with no permit held changes nothing.
   */
  release(): void {
    if (this.held === 0) return;
    this.held--;
    this.delayBound?.released(performance.now(), this.live);
    if (this.live === 0) {
      // Nobody waits (the common case): at most forget entries that gave up.
      if (this.queue.length !== 0) this.compact();
      if (this.onIdle !== undefined && this.held === 0) this.onIdle();
      return;
    }
    if (this.held < this.current) this.grantOldest();
  }

  /** Resolves once no permit is held and nobody waits. */
  idle(): Promise<void> {
    if (this.live === 0 && this.held === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.onIdle = () => {
        if (this.live !== 0 || this.held !== 0) return;
        this.onIdle = undefined;
        resolve();
      };
    });
  }

  /** Rejects every waiter (used by end()). */
  rejectAll(makeError: () => Error): void {
    for (let i = this.head; i < this.queue.length; i++) {
      const waiter = this.queue[i]!;
      if (!waiter.done) {
        this.settle(waiter);
        waiter.reject(makeError());
      }
    }
    this.queue = [];
    this.head = 0;
  }

  /** Hands a permit to the oldest waiter that has not given up; the caller checked the limit. */
  private grantOldest(): void {
    while (this.head < this.queue.length) {
      const waiter = this.queue[this.head]!;
      this.queue[this.head] = undefined as unknown as Waiter;
      this.head++;
      if (waiter.done) continue;
      this.settle(waiter);
      this.held++;
      this.compact();
      waiter.resolve();
      return;
    }
    this.compact();
  }

  private giveUp(waiter: Waiter, err: Error): void {
    if (waiter.done) return;
    this.settle(waiter);
    this.dropAbandoned();
    waiter.reject(err);
  }

  /**
   * Forgets waiters that gave up. While an endpoint hangs nothing is released, so without this a
   * long outage would pile up timed-out entries without bound.
   */
  private dropAbandoned(): void {
    while (this.head < this.queue.length && this.queue[this.head]!.done) {
      this.queue[this.head] = undefined as unknown as Waiter;
      this.head++;
    }
    if (this.queue.length - this.head > 2 * this.live + 64) {
      this.queue = this.queue.slice(this.head).filter((w) => !w.done);
      this.head = 0;
    } else {
      this.compact();
    }
  }

  private settle(waiter: Waiter): void {
    waiter.done = true;
    this.live--;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
  }

  /** Drops consumed entries once they dominate the array, keeping memory bounded. */
  private compact(): void {
    if (this.live === 0 || this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
