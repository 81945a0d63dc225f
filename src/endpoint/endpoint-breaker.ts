/**
 * The circuit breaker of one endpoint: the shared CircuitBreaker, told what PostgreSQL's answers
 * mean. Only health failures count (a connect the server does not answer, a lost connection, an
 * acquire timeout on a server asked to connect); SQL errors mean the server answered. A half-open
 * probe answered with a SQL error therefore proves the server is back.
 *
 * One network event that breaks every open connection counts once (see breaker/health-window.ts):
 * each connection is stamped, the first time the endpoint uses it, with the breaker's serial of
 * counted failures, and a statement that lost its connection carries that stamp to the breaker.
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

/** The breaker serial under which a pooled connection was first used (see HealthWindow). */
const OPENED_UNDER = Symbol('resilient-pool.openedUnder');

interface Stamped {
  [OPENED_UNDER]?: number;
}

/** Errors of lost connections, with their connection's stamp. A WeakMap: driver errors unmutated. */
const LOST_CONNECTION = new WeakMap<object, number>();

/**
 * Stamps `client` with the breaker's serial, the first time the endpoint uses it; a client from
 * the pool is new then (the pool opens connections only when asked). One property read after.
 */
export function stampConnection(client: object, breaker: CircuitBreaker): void {
  const stamped = client as Stamped;
  if (stamped[OPENED_UNDER] === undefined) stamped[OPENED_UNDER] = breaker.signals;
}

/** Marks `err` as the loss of `client`'s connection, so the breaker can tell echoes apart. */
export function markConnectionLost<E>(err: E, client: object): E {
  const stamp = (client as Stamped)[OPENED_UNDER];
  if (typeof err === 'object' && err !== null && stamp !== undefined) {
    LOST_CONNECTION.set(err, stamp);
  }
  return err;
}

/** The stamp of the connection whose loss `err` reports; undefined for any other failure. */
export function lostConnectionStamp(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? LOST_CONNECTION.get(err) : undefined;
}

export class EndpointBreaker extends CircuitBreaker {
  constructor(name: string, settings: CircuitBreakerSettings, onStateChange: BreakerStateListener) {
    super(name, settings, onStateChange, HEALTH_FAILURES);
  }

  /** A failure of a call made while closed; a lost connection brings its connection's stamp. */
  override recordFailure(err: unknown, connectionSignals = lostConnectionStamp(err)): void {
    super.recordFailure(err, connectionSignals);
  }

  /** Counts a failure the classification cannot see (a primary found read-only). */
  recordHealthFailure(): void {
    this.countFailure();
  }
}
