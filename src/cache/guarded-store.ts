/**
 * Every store call goes through here: refused at once while the cache's breaker is open, else
 * raced against its own short timer (a slow or black-holed Redis costs a read at most `timeout`
 * ms, whatever the client's own settings), and its outcome reported to the breaker. Failures
 * never throw: a call resolves to its value or to {@link UNAVAILABLE}, so the cache's read path
 * has no try/catch and allocates no error on success.
 */
import type { LoggerLike } from '../telemetry/logger.js';
import { type Admission, type CacheBreaker, DENIED } from './cache-breaker.js';
import type { CacheCounters } from './stats.js';

/** A store call that was refused (open breaker), failed or timed out. */
export const UNAVAILABLE: unique symbol = Symbol('cache store unavailable');
export type Guarded<T> = Promise<T | typeof UNAVAILABLE>;

export class StoreGuard {
  constructor(
    private readonly breaker: CacheBreaker,
    private readonly timeoutMs: number,
    private readonly counters: CacheCounters,
    private readonly logger: LoggerLike,
  ) {}

  /**
   * Runs `op` (one store command, plus any check of its reply) under the breaker and the timer.
   * `what` names the command in debug logs; keys are never logged here.
   */
  call<T>(what: string, op: () => Promise<T>): Guarded<T> {
    const admission = this.breaker.admit();
    if (admission === DENIED) return Promise.resolve(UNAVAILABLE);
    let pending: Promise<T>;
    try {
      pending = op();
    } catch (err) {
      this.failed(admission, what, err, false);
      return Promise.resolve(UNAVAILABLE);
    }
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        this.failed(admission, what, undefined, true);
        resolve(UNAVAILABLE);
      }, this.timeoutMs);
      pending.then(
        (value) => {
          if (settled) return;
          clearTimeout(timer);
          this.breaker.success(admission);
          resolve(value);
        },
        (err: unknown) => {
          // A late failure of a call that already timed out was counted then.
          if (settled) return;
          clearTimeout(timer);
          this.failed(admission, what, err, false);
          resolve(UNAVAILABLE);
        },
      );
    });
  }

  private failed(admission: Admission, what: string, err: unknown, timedOut: boolean): void {
    this.counters.errors++;
    if (timedOut) this.counters.timeouts++;
    this.breaker.failure(admission);
    this.logger.debug(
      { command: what, err: timedOut ? `no answer within ${this.timeoutMs} ms` : describe(err) },
      'resilient-pool: cache store call failed; the read goes to the database',
    );
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
