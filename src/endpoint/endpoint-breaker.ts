/**
 * The circuit breaker of one endpoint: the shared CircuitBreaker, told what PostgreSQL's answers
 * mean. Only health failures count (a connect the server does not answer, a lost connection, an
 * acquire timeout on a server asked to connect); SQL errors mean the server answered. A half-open
 * probe answered with a SQL error therefore proves the server is back.
 */
import { CircuitBreaker } from '../breaker/circuit-breaker.js';
import type {
  BreakerStateListener,
  CircuitBreakerSettings,
  FailurePolicy,
} from '../breaker/types.js';
import { classify, isHealthFailure } from '../classify.js';
import { wasNotSent } from '../retry/policy.js';

/**
 * Whether a failed half-open probe still proves the server answers: a SQL error other than
 * read-only, or the caller's own timeout or abort once its statement had been sent (the server
 * took the connection and the statement; the caller's deadline says nothing about the server).
 * A caller's abort while still connecting proves nothing, and the circuit re-opens.
 */
function answeredByServer(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (code === 'E_TIMEOUT' || code === 'E_ABORTED') return !wasNotSent(err);
  return (
    typeof code === 'string' &&
    /^[0-9A-Z]{5}$/.test(code) &&
    // A primary answering read-only proves nothing good; nor does a call the caller abandoned.
    code !== '25006' &&
    !isHealthFailure(err) &&
    classify(err) !== 'aborted'
  );
}

/** What counts against an endpoint's circuit, and which failed probes still close it. */
export const HEALTH_FAILURES: FailurePolicy = {
  counts: isHealthFailure,
  answered: answeredByServer,
};

export class EndpointBreaker extends CircuitBreaker {
  constructor(name: string, settings: CircuitBreakerSettings, onStateChange: BreakerStateListener) {
    super(name, settings, onStateChange, HEALTH_FAILURES);
  }

  /** Counts a failure the classification cannot see (a primary found read-only). */
  recordHealthFailure(): void {
    this.countFailure();
  }
}
