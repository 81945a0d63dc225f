/**
 * What the circuit breaker is told by its owner (an endpoint, the cache): its settings, which
 * failures speak about the dependency's health, and who hears its state changes. Kept apart from
 * the state machine so an owner can describe itself without importing the implementation.
 */
import type { BreakerState } from '../telemetry/events.js';

export type { BreakerState };

/** When a closed circuit opens: the HealthWindow's counting policy, all resolved. */
export interface HealthWindowSettings {
  /** Percentage of failed calls in the rolling window above which the circuit opens. */
  errorThresholdPercentage: number;
  /** Calls needed in the rolling window before the percentage is trusted. */
  volumeThreshold: number;
  /** Consecutive failures that open the circuit whatever the percentage (0 turns this off). */
  consecutiveFailures: number;
  /** Length of the rolling window, in ms. */
  rollingCountTimeout: number;
  /** Buckets in the rolling window; divides `rollingCountTimeout` evenly. */
  rollingCountBuckets: number;
}

/** Everything a CircuitBreaker needs, all resolved. */
export interface CircuitBreakerSettings extends HealthWindowSettings {
  /** False: the circuit never opens and every call runs directly. */
  enabled: boolean;
  /** Time an open circuit waits before letting one probe through (half-open), in ms. */
  resetTimeout: number;
}

/**
 * Which failures say something about the dependency. The breaker itself knows nothing of
 * PostgreSQL or Redis: its owner decides.
 */
export interface FailurePolicy {
  /** Whether a failure reported while the circuit is closed counts against it. */
  counts(err: unknown): boolean;
  /** Whether a half-open probe that rejected with `err` still proves the dependency answered. */
  answered(err: unknown): boolean;
}

/** Hears every change of state, with the state it left. */
export type BreakerStateListener = (state: BreakerState, previous: BreakerState) => void;
