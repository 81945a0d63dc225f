/**
 * A call's `timeout` and `signal`, folded into one AbortSignal that every wait and statement of
 * the call honours: queue waits, retry sleeps and running statements (which are cancelled on the
 * server). Built only for calls that pass a timeout, so the common path pays nothing.
 */
import { TimeoutError } from './errors.js';

export interface Deadline {
  /** Aborts when the caller's signal does or when the timeout elapses (reason: TimeoutError). */
  readonly signal: AbortSignal;
  /** Stops the timer and detaches from the caller's signal. */
  done(): void;
}

/** A deadline for a call; `signal` alone is returned unchanged when there is no timeout. */
export function startDeadline(
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
): Deadline | undefined {
  if (timeoutMs === undefined) return undefined;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new TimeoutError(timeoutMs)), timeoutMs);
  const follow = () => controller.abort(signal?.reason);
  if (signal?.aborted) follow();
  else signal?.addEventListener('abort', follow, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', follow);
    },
  };
}

/**
 * Settles as `promise` does, or rejects as soon as `signal` fires with what `onAbort` returns
 * (the work itself goes on; `onAbort` may start undoing it). The listener is always removed.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  onAbort: () => unknown,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(onAbort());
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(err);
      },
    );
  });
}

/** Runs `run` under a deadline when `timeoutMs` is set; the deadline ends with the call. */
export function withDeadline<T>(
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
  run: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  const deadline = startDeadline(timeoutMs, signal);
  if (deadline === undefined) return run(signal);
  return run(deadline.signal).finally(() => deadline.done());
}
