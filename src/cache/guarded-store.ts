/**
 * Every store call goes through here: refused at once while the cache's breaker is open, else
 * raced against its own short timer (a slow or black-holed Redis costs a read at most `timeout`
 * ms, whatever the client's own settings), and its outcome reported to the breaker. While the
 * breaker is half-open, the one call it lets through is its probe. Failures never throw: a call
 * resolves to its value or to {@link UNAVAILABLE}, so the cache's read path has no try/catch and
 * allocates no error on success.
 */
import type { CircuitBreaker } from '../breaker/circuit-breaker.js';
import type { LoggerLike } from '../telemetry/logger.js';
import type { CacheCounters } from './stats.js';

/** A store call that was refused (open breaker), failed or timed out. */
export const UNAVAILABLE: unique symbol = Symbol('cache store unavailable');
export type Guarded<T> = Promise<T | typeof UNAVAILABLE>;

/** Where the outcome of one store call is reported. */
interface OutcomeSink {
  recordSuccess(): void;
  recordFailure(err: unknown): void;
}

/** The probe's outcome is opossum's to judge, from whether the probe's work rejects. */
const TO_OPOSSUM: OutcomeSink = { recordSuccess() {}, recordFailure() {} };

/** The probe's work rejects when its store call failed, so opossum re-opens the circuit. */
function rejectUnavailable<T>(value: T | typeof UNAVAILABLE): T | Promise<never> {
  return value === UNAVAILABLE ? Promise.reject(UNAVAILABLE) : value;
}

function unavailable(): typeof UNAVAILABLE {
  return UNAVAILABLE;
}

export class StoreGuard {
  constructor(
    private readonly breaker: CircuitBreaker,
    private readonly timeoutMs: number,
    private readonly counters: CacheCounters,
    private readonly logger: LoggerLike,
  ) {}

  /**
   * Runs `op` (one store command, plus any check of its reply) under the breaker and the timer.
   * `what` names the command in debug logs; keys are never logged here.
   */
  call<T>(what: string, op: () => Promise<T>): Guarded<T> {
    if (this.breaker.isClosed) return this.attempt(what, op, this.breaker);
    if (!this.breaker.admits) return Promise.resolve(UNAVAILABLE);
    return this.breaker
      .probe(() => this.attempt(what, op, TO_OPOSSUM).then(rejectUnavailable))
      .catch(unavailable);
  }

  /** One store call raced against the timer; its outcome goes to `outcome`. */
  private attempt<T>(what: string, op: () => Promise<T>, outcome: OutcomeSink): Guarded<T> {
    let pending: Promise<T>;
    try {
      pending = op();
    } catch (err) {
      this.failed(outcome, what, err, false);
      return Promise.resolve(UNAVAILABLE);
    }
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        this.failed(outcome, what, undefined, true);
        resolve(UNAVAILABLE);
      }, this.timeoutMs);
      pending.then(
        (value) => {
          if (settled) return;
          clearTimeout(timer);
          outcome.recordSuccess();
          resolve(value);
        },
        (err: unknown) => {
          // A late failure of a call that already timed out was counted then.
          if (settled) return;
          clearTimeout(timer);
          this.failed(outcome, what, err, false);
          resolve(UNAVAILABLE);
        },
      );
    });
  }

  private failed(outcome: OutcomeSink, what: string, err: unknown, timedOut: boolean): void {
    this.counters.errors++;
    if (timedOut) this.counters.timeouts++;
    outcome.recordFailure(err);
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
