/**
 * The circuit breaker of one endpoint. opossum is the state machine: closed, open, half-open,
 * the reset timer, the single half-open probe, the events. The HealthWindow decides when a
 * closed circuit opens, from health failures only (SQL errors mean the server answered).
 *
 * While the circuit is closed, calls do not pass through opossum at all; they report their
 * outcome with `recordSuccess()` / `recordFailure()`. Only the half-open probe goes through
 * `opossum.call()`, which lets exactly one through and closes or re-opens on its outcome.
 */
import CircuitBreaker from 'opossum';
import { classify, isHealthFailure } from '../classify.js';
import { CircuitOpenError, withoutStack } from '../errors.js';
import type { BreakerOptions } from '../options.js';
import type { BreakerState } from '../telemetry/events.js';
import { HealthWindow } from './health-window.js';

/** Whether an error is the server's own answer (a SQL error other than read-only). */
function answeredByServer(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    typeof code === 'string' &&
    /^[0-9A-Z]{5}$/.test(code) &&
    code !== '25006' &&
    !isHealthFailure(err) &&
    classify(err) !== 'aborted'
  );
}

/** Runs the probe's work; opossum's action, so one breaker can guard any kind of call. */
function runProbe<R>(work: () => Promise<R>): Promise<R> {
  return work();
}

export class EndpointBreaker {
  private readonly circuit: CircuitBreaker;
  private readonly window: HealthWindow;
  private readonly enabled: boolean;
  private current: BreakerState = 'closed';
  /** Held open while the endpoint is declared down: not even a half-open probe is let through. */
  private held = false;

  constructor(
    private readonly name: string,
    options: Required<BreakerOptions>,
    onStateChange: (state: BreakerState, previous: BreakerState) => void,
  ) {
    this.enabled = options.enabled;
    this.window = new HealthWindow(options);
    this.circuit = new CircuitBreaker(runProbe, {
      name,
      resetTimeout: options.resetTimeout,
      rollingCountTimeout: options.rollingCountTimeout,
      rollingCountBuckets: options.rollingCountBuckets,
      // Opening is the HealthWindow's decision; opossum's own statistics only ever see the
      // half-open probe, which re-opens the circuit on failure regardless of thresholds.
      volumeThreshold: Number.MAX_SAFE_INTEGER,
      // No per-call timer: statement_timeout / query_timeout bound queries, the gate bounds waits.
      timeout: false,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      // A probe answered with a SQL error still proves the server is back; one the caller
      // abandoned, or a primary answering read-only (25006), proves nothing good.
      errorFilter: (err: unknown) => answeredByServer(err),
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
   * Checked before queueing so an open circuit refuses at once.
   */
  get admits(): boolean {
    return !this.held && (this.isClosed || this.circuit.pendingClose);
  }

  /** Opens the circuit and keeps it open, whatever its reset timer says, until `releaseHold()`. */
  holdOpen(): void {
    this.held = true;
    if (this.enabled && this.current !== 'open') this.circuit.open();
  }

  /** Ends a hold: the endpoint answered a probe, so the circuit closes with a clean record. */
  releaseHold(): void {
    if (!this.held) return;
    this.held = false;
    if (this.current !== 'closed') this.circuit.close();
  }

  /** A stackless CircuitOpenError for this endpoint. */
  openError(): CircuitOpenError {
    return withoutStack(() => new CircuitOpenError(this.name));
  }

  /** Outcome of a call made while closed: the server answered. */
  recordSuccess(): void {
    this.window.success();
  }

  /** Outcome of a call made while closed (or a queue timeout): counts if it is a health failure. */
  recordFailure(err: unknown): void {
    if (!this.enabled || this.current !== 'closed' || !isHealthFailure(err)) return;
    if (this.window.failure()) this.circuit.open();
  }

  /** Closes the circuit now: the endpoint was re-pointed at another server (a failover). */
  reset(): void {
    this.held = false;
    this.circuit.close();
  }

  /** Counts a failure the classification cannot see (a primary found read-only). */
  recordHealthFailure(): void {
    if (!this.enabled || this.current !== 'closed') return;
    if (this.window.failure()) this.circuit.open();
  }

  /**
   * Runs `work` as the half-open probe. Rejects with CircuitOpenError if another probe is
   * already out.
   */
  probe<R>(work: () => Promise<R>): Promise<R> {
    return (this.circuit.fire(work) as Promise<R>).catch((err: unknown) => {
      throw CircuitBreaker.isOurError(err as Error) ? this.openError() : err;
    });
  }

  /** Stops timers and forgets listeners. */
  shutdown(): void {
    this.window.stop();
    this.circuit.shutdown();
  }
}
