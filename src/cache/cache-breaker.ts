/**
 * The cache's circuit breaker, with the semantics of the endpoints' breakers (closed -> open on
 * a failure rate over a rolling window or a streak of consecutive failures; open -> half-open
 * after `resetTimeout`; one probe; its outcome closes or re-opens), and the same counting policy
 * (HealthWindow). It is its own small state machine rather than EndpointBreaker because every
 * store failure counts here (a timeout, a refused connection, a reply that does not fit), where
 * an endpoint's breaker filters failures through PostgreSQL's error classes.
 */
import { HealthWindow } from '../endpoint/health-window.js';
import type { BreakerState } from '../telemetry/events.js';

/** Breaker settings, all resolved. */
export interface CacheBreakerSettings {
  consecutiveFailures: number;
  errorThresholdPercentage: number;
  volumeThreshold: number;
  resetTimeout: number;
}

/** How a call was let through: not at all, as an ordinary call, or as the half-open probe. */
export const DENIED = 0;
export const ADMITTED = 1;
export const PROBE = 2;
export type Admission = typeof DENIED | typeof ADMITTED | typeof PROBE;

/** The rolling window the failure rate is computed over. */
const WINDOW_MS = 10_000;
const WINDOW_BUCKETS = 10;

export class CacheBreaker {
  private current: BreakerState = 'closed';
  private probeOut = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly window: HealthWindow;
  private closed = false;

  constructor(
    private readonly settings: CacheBreakerSettings,
    private readonly onChange: (state: BreakerState, previous: BreakerState) => void,
  ) {
    this.window = new HealthWindow({
      consecutiveFailures: settings.consecutiveFailures,
      errorThresholdPercentage: settings.errorThresholdPercentage,
      volumeThreshold: settings.volumeThreshold,
      rollingCountTimeout: WINDOW_MS,
      rollingCountBuckets: WINDOW_BUCKETS,
    });
  }

  get state(): BreakerState {
    return this.current;
  }

  /** Whether a call would be let through now (closed, or half-open with the probe slot free). */
  get admits(): boolean {
    return this.current === 'closed' || (this.current === 'half-open' && !this.probeOut);
  }

  /** Lets a call through, or not; in half-open, the first call takes the probe slot. */
  admit(): Admission {
    if (this.current === 'closed') return ADMITTED;
    if (this.current === 'half-open' && !this.probeOut) {
      this.probeOut = true;
      return PROBE;
    }
    return DENIED;
  }

  success(admission: Admission): void {
    if (admission === PROBE) {
      this.probeOut = false;
      this.window.reset();
      this.change('closed');
    } else if (admission === ADMITTED && this.current === 'closed') {
      this.window.success();
    }
  }

  failure(admission: Admission): void {
    if (admission === PROBE) {
      this.probeOut = false;
      this.open();
    } else if (admission === ADMITTED && this.current === 'closed' && this.window.failure()) {
      this.open();
    }
  }

  /** Stops the timers (the window's and the reset timer). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.window.stop();
  }

  private open(): void {
    this.change('open');
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.change('half-open');
    }, this.settings.resetTimeout);
    this.timer.unref();
  }

  private change(state: BreakerState): void {
    const previous = this.current;
    if (previous === state) return;
    this.current = state;
    this.onChange(state, previous);
  }
}
