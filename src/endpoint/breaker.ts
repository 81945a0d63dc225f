/**
 * The circuit breaker of one endpoint: opossum, configured to do no per-call work it does not
 * need, and told which failures say something about the endpoint's health.
 */
import CircuitBreaker from 'opossum';
import { isHealthFailure } from '../classify.js';
import { CircuitOpenError, withoutStack } from '../errors.js';
import type { BreakerOptions } from '../options.js';
import type { BreakerState } from '../telemetry/events.js';

/** The breaker's action: runs `work` with its two arguments, so one breaker guards any call. */
type Work<C, A, B, R> = (this: C, a: A, b: B) => Promise<R>;

function runWork<C, A, B, R>(this: C, work: Work<C, A, B, R>, a: A, b: B): Promise<R> {
  return work.call(this, a, b);
}

function rejectWith(err: unknown): Promise<never> {
  return Promise.reject(err);
}

export class EndpointBreaker {
  private readonly circuit: CircuitBreaker;
  private current: BreakerState = 'closed';
  private streak = 0;

  constructor(
    private readonly name: string,
    options: Required<BreakerOptions>,
    onStateChange: (state: BreakerState, previous: BreakerState) => void,
  ) {
    this.circuit = new CircuitBreaker(runWork, {
      name,
      enabled: options.enabled,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      resetTimeout: options.resetTimeout,
      rollingCountTimeout: options.rollingCountTimeout,
      rollingCountBuckets: options.rollingCountBuckets,
      // No per-call timer: statement_timeout / query_timeout bound queries, the gate bounds waits.
      timeout: false,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      // SQL errors (23505, 42P01, ...) mean the server answered: they must not open the circuit.
      errorFilter: (err: unknown) => !isHealthFailure(err),
    });
    const change = (state: BreakerState) => () => {
      const previous = this.current;
      if (previous === state) return;
      this.current = state;
      onStateChange(state, previous);
    };
    // opossum opens on a failure percentage over its rolling window, so an endpoint with a long
    // record of successes that suddenly dies (SIGKILL) would keep receiving calls for a while.
    // Consecutive failures (Envoy's outlier detection, cockatiel's ConsecutiveBreaker) catch that
    // at once. opossum emits 'success' for errors its filter let pass (SQL errors): those reset
    // the streak too, as the server answered.
    if (options.consecutiveFailures > 0) {
      this.circuit.on('success', () => {
        this.streak = 0;
      });
      this.circuit.on('failure', () => {
        if (++this.streak >= options.consecutiveFailures && this.circuit.enabled) {
          this.circuit.open();
        }
      });
    }
    this.circuit.on('open', change('open'));
    this.circuit.on('halfOpen', change('half-open'));
    this.circuit.on('close', () => {
      this.streak = 0;
      change('closed')();
    });
  }

  get state(): BreakerState {
    return this.current;
  }

  /**
   * Whether a call would be let through now: closed, or half-open with the probe slot free.
   * Checked before queueing so an open circuit refuses at once, without opossum building an
   * Error with a stack for each refusal.
   */
  get admits(): boolean {
    const circuit = this.circuit;
    return circuit.closed || circuit.pendingClose || !circuit.enabled;
  }

  /** A stackless CircuitOpenError for this endpoint. */
  openError(): CircuitOpenError {
    return withoutStack(() => new CircuitOpenError(this.name));
  }

  /** Runs `work(a, b)` under the breaker; rejections that are health failures count against it. */
  run<C, A, B, R>(context: C, work: Work<C, A, B, R>, a: A, b: B): Promise<R> {
    return this.circuit.call(context, work, a, b) as Promise<R>;
  }

  /** Counts a health failure that happened outside `run` (a queue timeout, say). */
  recordFailure(err: unknown): void {
    if (!this.admits) return;
    this.circuit.fire(rejectWith, err).catch(() => {});
  }

  /** Stops opossum's bucket timer and forgets listeners. */
  shutdown(): void {
    this.circuit.shutdown();
  }
}

export function isBreakerRejection(err: unknown): boolean {
  return CircuitBreaker.isOurError(err as Error);
}
