/**
 * What the endpoint pipeline (gate, acquire, statement attempt) uses of an AbortSignal, so that
 * it takes either a caller's real AbortSignal or a `LightAbortSignal` of this library's own.
 *
 * Why a light one: Node's EventTarget is slow for what the pipeline does with it. A statement
 * adds an 'abort' listener while it connects and another while it runs, and removes both; on
 * Node 20 each add and each remove costs about half a microsecond (measured: they were a fifth
 * of what a hedged read costs in process). The hedge race gives each of its sides a signal of
 * its own, on every hedged read; those sides use the light one. A caller's signal stays the
 * caller's AbortSignal: nothing here replaces it.
 */

export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * An abort signal with its controller in one object, for this library's own use. Like an
 * AbortSignal: `abort()` sets `aborted` and `reason` once and calls each listener once,
 * synchronously, in the order added; a listener is added at most once, and one added after the
 * abort is never called; a
 * listener that throws is reported as an uncaught exception on the next tick (as EventTarget
 * does) and the others still run.
 */
export class LightAbortSignal implements AbortSignalLike {
  aborted = false;
  reason: unknown = undefined;
  /** Listeners, most often one or none; emptied by abort(). */
  private listeners: (() => void)[] = [];

  get listenerCount(): number {
    return this.listeners.length;
  }

  /**
   * As EventTarget: a listener already added is not added again. Every listener is called once
   * at most (`once` or not), since the signal aborts once.
   */
  addEventListener(_type: 'abort', listener: () => void, _options?: { once?: boolean }): void {
    if (!this.aborted && !this.listeners.includes(listener)) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const { listeners } = this;
    const i = listeners.lastIndexOf(listener);
    if (i < 0) return;
    if (i === listeners.length - 1) listeners.pop();
    else listeners.splice(i, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) {
      try {
        listener();
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}
