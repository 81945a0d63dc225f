/**
 * One circuit breaker for any dependency: an endpoint's server, the cache's store. opossum is the
 * state machine (closed, open, half-open, the reset timer, the single half-open probe, the
 * events); a HealthWindow decides when a closed circuit opens; a FailurePolicy, given by the
 * owner, says which failures speak about the dependency's health.
 *
 * While the circuit is closed, calls do not pass through opossum at all: they report their
 * outcome with `recordSuccess()` / `recordFailure()`, one increment in the window, no promise, no
 * timer. Only the half-open probe goes through opossum, which lets exactly one through and closes
 * or re-opens on its outcome.
 */
import Opossum from 'opossum';
import { CircuitOpenError, withoutStack } from '../errors.js';
import { HealthWindow } from './health-window.js';
import type {
  BreakerState,
  BreakerStateListener,
  CircuitBreakerSettings,
  FailurePolicy,
} from './types.js';

/** Every failure counts, and a probe that failed proves nothing: for owners that judge none. */
export const EVERY_FAILURE: FailurePolicy = {
  counts: () => true,
  answered: () => false,
};

/** Runs the probe's work; opossum's action, so one breaker can guard any kind of call. */
function runProbe<R>(work: () => Promise<R>): Promise<R> {
  return work();
}

/** A rejection by opossum itself (open, probe already out, shut down), not by the work. */
function isOpossumRefusal(err: unknown): boolean {
  return typeof err === 'object' && err !== null && Opossum.isOurError(err as Error);
}

export class CircuitBreaker {
  private readonly circuit: Opossum;
  private readonly window: HealthWindow;
  private readonly enabled: boolean;
  private current: BreakerState = 'closed';
  /** Held open (a dependency declared down): not even a half-open probe is let through. */
  private held = false;

  /**
   * @param name Names the circuit in opossum and in CircuitOpenError.
   * @param onStateChange Called on every change of state; must not throw.
   * @param policy Which failures count; every one by default.
   */
  constructor(
    private readonly name: string,
    settings: CircuitBreakerSettings,
    onStateChange: BreakerStateListener,
    private readonly policy: FailurePolicy = EVERY_FAILURE,
  ) {
    this.enabled = settings.enabled;
    this.window = new HealthWindow(settings);
    this.circuit = new Opossum(runProbe, {
      name,
      resetTimeout: settings.resetTimeout,
      rollingCountTimeout: settings.rollingCountTimeout,
      rollingCountBuckets: settings.rollingCountBuckets,
      // Opening is the HealthWindow's decision; opossum's own statistics only ever see the
      // half-open probe, which re-opens the circuit on failure regardless of thresholds.
      volumeThreshold: Number.MAX_SAFE_INTEGER,
      // No per-call timer: the owner bounds its calls (statement_timeout, the cache's timeout).
      timeout: false,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      errorFilter: (err: unknown) => policy.answered(err),
    });
    const change = (state: BreakerState) => {
      const previous = this.current;
      if (previous === state) return;
      this.current = state;
      onStateChange(state, previous);
    };
    this.circuit.on('open', () => change('open'));
    this.circuit.on('halfOpen', () => change('half-open'));
    this.circuit.on('close', () => {
      this.window.reset();
      change('closed');
    });
  }

  get state(): BreakerState {
    return this.current;
  }

  /** Closed (or disabled): calls run directly and report their outcome. */
  get isClosed(): boolean {
    return this.current === 'closed' || !this.enabled;
  }

  /**
   * Whether a call would be let through now: closed, or half-open with the probe slot free.
   * Checked before queueing (or before a store call) so an open circuit refuses at once.
   */
  get admits(): boolean {
    return !this.held && (this.isClosed || this.circuit.pendingClose);
  }

  /** Opens the circuit and keeps it open, whatever its reset timer says, until `releaseHold()`. */
  holdOpen(): void {
    this.held = true;
    if (this.enabled && this.current !== 'open') this.circuit.open();
  }

  /** Ends a hold: the dependency answered, so the circuit closes with a clean record. */
  releaseHold(): void {
    if (!this.held) return;
    this.held = false;
    if (this.current !== 'closed') this.circuit.close();
  }

  /** Closes the circuit now, with a clean record (the dependency was replaced: a failover). */
  reset(): void {
    this.held = false;
    this.circuit.close();
  }

  /** A stackless CircuitOpenError naming this circuit. */
  openError(): CircuitOpenError {
    return withoutStack(() => new CircuitOpenError(this.name));
  }

  /** Outcome of a call made while closed: the dependency answered. */
  recordSuccess(): void {
    this.window.success();
  }

  /**
   * The serial of the latest counted failure (see HealthWindow): an owner stamps each new
   * connection with it, and passes the stamp when that connection is lost.
   */
  get signals(): number {
    return this.window.signals;
  }

  /**
   * Outcome of a call made while closed: counts if the policy says so. Ignored otherwise.
   * `connectionSignals`: the stamp of the connection the call lost (see `signals`), so that one
   * event breaking many connections counts once.
   */
  recordFailure(err: unknown, connectionSignals?: number): void {
    if (this.enabled && this.current === 'closed' && this.policy.counts(err)) {
      this.countFailure(connectionSignals);
    }
  }

  /** A failure the owner has judged itself (one the policy cannot see): counts while closed. */
  countFailure(connectionSignals?: number): void {
    if (!this.enabled || this.current !== 'closed') return;
    if (this.window.failure(connectionSignals)) this.circuit.open();
  }

  /**
   * Runs `work` as the half-open probe: its success closes the circuit, its failure re-opens it
   * (unless the policy says the rejection still shows the dependency answered). Rejects with a
   * CircuitOpenError if the circuit is open or another probe is already out.
   */
  probe<R>(work: () => Promise<R>): Promise<R> {
    return (this.circuit.fire(work) as Promise<R>).catch((err: unknown) => {
      throw isOpossumRefusal(err) ? this.openError() : err;
    });
  }

  /** Stops the timers (the window's, opossum's) and forgets the listeners. */
  shutdown(): void {
    this.window.stop();
    this.circuit.shutdown();
  }
}
