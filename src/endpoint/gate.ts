/**
 * The bounded wait queue in front of one endpoint: at most `maxConcurrent` calls hold a permit,
 * at most `maxWaiting` wait for one in FIFO order, and no wait outlasts its deadline or its
 * caller's AbortSignal. Keeping pg's own (unbounded, timer-less by default) queue empty is the
 * point: overload is refused here in microseconds instead of piling up inside pg.
 *
 * The fast path (a permit is free and nobody waits) is synchronous and allocates nothing.
 */
import { AcquireTimeoutError, abortError, QueueFullError, withoutStack } from '../errors.js';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Set once the waiter got a permit or gave up; such entries are skipped, then dropped. */
  done: boolean;
}

export interface GateOptions {
  /** Endpoint name for errors. */
  name: string;
  maxConcurrent: number;
  maxWaiting: number;
  /** Longest wait in the queue, in ms. */
  acquireTimeout: number;
}

export class Gate {
  readonly name: string;
  readonly maxConcurrent: number;
  readonly maxWaiting: number;
  readonly acquireTimeout: number;
  private free: number;
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
    this.free = options.maxConcurrent;
  }

  /** Calls holding a permit. */
  get inUse(): number {
    return this.maxConcurrent - this.free;
  }

  /** Calls waiting for a permit. */
  get waiting(): number {
    return this.live;
  }

  /** Whether a new call would be let in now or queued (not refused as queue-full). */
  get canAdmit(): boolean {
    return (this.free > 0 && this.live === 0) || this.live < this.maxWaiting;
  }

  /** Whether a new waiter would be refused. */
  get isFull(): boolean {
    return this.live >= this.maxWaiting;
  }

  /** A stackless QueueFullError for this gate. */
  fullError(): QueueFullError {
    return withoutStack(() => new QueueFullError(this.name, this.maxWaiting));
  }

  /** Takes a permit at once if one is free and nobody is ahead in the queue. */
  tryAcquire(): boolean {
    if (this.free > 0 && this.live === 0) {
      this.free--;
      return true;
    }
    return false;
  }

  /**
   * Waits for a permit. Rejects at once with QueueFullError when `maxWaiting` calls already wait,
   * with AcquireTimeoutError after `timeoutMs`, and with AbortedError when `signal` fires; a
   * waiter that gives up frees its place in the queue immediately.
   */
  acquire(signal?: AbortSignal, timeoutMs: number = this.acquireTimeout): Promise<void> {
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

  /** Returns a permit: to the oldest live waiter if any, else to the free count. */
  release(): void {
    if (this.live === 0) {
      // Nobody waits (the common case): at most forget entries that gave up.
      if (this.queue.length !== 0) this.compact();
      if (this.free < this.maxConcurrent) this.free++;
      if (this.onIdle !== undefined && this.free === this.maxConcurrent) this.onIdle();
      return;
    }
    while (this.head < this.queue.length) {
      const waiter = this.queue[this.head]!;
      this.queue[this.head] = undefined as unknown as Waiter;
      this.head++;
      if (waiter.done) continue;
      this.settle(waiter);
      this.compact();
      waiter.resolve();
      return;
    }
    this.compact();
    if (this.free < this.maxConcurrent) this.free++;
  }

  /** Resolves once no permit is held and nobody waits. */
  idle(): Promise<void> {
    if (this.live === 0 && this.free === this.maxConcurrent) return Promise.resolve();
    return new Promise((resolve) => {
      this.onIdle = () => {
        if (this.live !== 0 || this.free !== this.maxConcurrent) return;
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
