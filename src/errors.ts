/**
 * Errors created by resilient-pool, and the one place driver errors are classified.
 *
 * Errors from PostgreSQL itself (SQLSTATE in `code`) and from Node's sockets (`ECONNREFUSED`, ...)
 * reach callers unchanged so existing `err.code` checks keep working; only conditions this library
 * creates (open circuit, full queue, ...) get its own classes.
 */

const BRAND = Symbol.for('resilient-pool.error');

/** Stable codes of the errors this library creates. Never renamed once published. */
export type ResilientPoolErrorCode =
  | 'E_CONFIG'
  | 'E_CIRCUIT_OPEN'
  | 'E_QUEUE_FULL'
  | 'E_ACQUIRE_TIMEOUT'
  | 'E_NO_HEALTHY_ENDPOINT'
  | 'E_POOL_CLOSED'
  | 'E_OUTCOME_UNKNOWN'
  | 'E_ENDPOINT_DOWN'
  | 'E_ROLLED_BACK'
  | 'E_ABORTED'
  | 'E_TIMEOUT'
  | 'E_FAILOVER_TIMEOUT'
  | 'E_FAILOVER_BUFFER_FULL';

interface ResilientPoolErrorOptions {
  endpoint?: string | undefined;
  cause?: unknown;
}

/**
 * Base class of every error this library creates. `instanceof` works across two copies of the
 * package (a brand registered with `Symbol.for`), as undici's errors do.
 */
export class ResilientPoolError extends Error {
  /** The stable code of this class; instances carry the same value in `code`. */
  static readonly code: ResilientPoolErrorCode | undefined = undefined;
  declare readonly [BRAND]: true;
  readonly code: ResilientPoolErrorCode;
  /** Name of the endpoint involved, when one is. */
  readonly endpoint: string | undefined;
  /** Whether trying again (later, or on another endpoint) can succeed. */
  readonly retryable: boolean;

  constructor(
    code: ResilientPoolErrorCode,
    message: string,
    retryable: boolean,
    options: ResilientPoolErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.endpoint = options.endpoint;
    this.retryable = retryable;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    if ((value as { [BRAND]?: unknown })[BRAND] !== true) return false;
    // `this` is the class `instanceof` was asked about (a subclass matches only its own code).
    // biome-ignore lint/complexity/noThisInStatic: the subclass, not the base, is wanted here
    const code = (this as { code?: ResilientPoolErrorCode }).code;
    return code === undefined || (value as { code?: unknown }).code === code;
  }
}

// On the prototype rather than each instance: refusals are built by the thousand in an outage.
Object.defineProperty(ResilientPoolError.prototype, BRAND, { value: true });

/** Options were invalid or unknown; `problems` lists every one found. */
export class ConfigError extends ResilientPoolError {
  static override readonly code = 'E_CONFIG';
  override readonly name = 'ConfigError';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(
      'E_CONFIG',
      `Invalid resilient-pool options:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      false,
    );
    this.problems = problems;
  }
}

/** The endpoint's circuit breaker is open: the call was refused without touching the database. */
export class CircuitOpenError extends ResilientPoolError {
  static override readonly code = 'E_CIRCUIT_OPEN';
  override readonly name = 'CircuitOpenError';
  constructor(endpoint: string) {
    super('E_CIRCUIT_OPEN', `Circuit breaker for endpoint "${endpoint}" is open`, true, {
      endpoint,
    });
  }
}

/** The endpoint's wait queue was full: the call was refused at once (load shedding). */
export class QueueFullError extends ResilientPoolError {
  static override readonly code = 'E_QUEUE_FULL';
  override readonly name = 'QueueFullError';
  /**
   * Full by count (`maxWaiting` calls wait), or, with `delay`, by wait (`queue.maxQueueDelayMs`):
   * the oldest call had waited `waitedMs`, and a new one would have waited about `expectedMs` (0:
   * the drain rate was not measured yet).
   */
  constructor(
    endpoint: string,
    maxWaiting: number,
    delay?: { waitedMs: number; expectedMs: number; maxQueueDelayMs: number },
  ) {
    super(
      'E_QUEUE_FULL',
      delay === undefined
        ? `Wait queue of endpoint "${endpoint}" is full (${maxWaiting} waiting)`
        : `Wait queue of endpoint "${endpoint}" is full: its oldest call has waited ${Math.round(delay.waitedMs)} ms${delay.expectedMs > 0 ? ` and a new one would wait about ${Math.round(delay.expectedMs)} ms` : ''} (queue.maxQueueDelayMs ${delay.maxQueueDelayMs})`,
      true,
      { endpoint },
    );
  }
}

/** No connection could be had from the endpoint within `queue.acquireTimeout`. */
export class AcquireTimeoutError extends ResilientPoolError {
  static override readonly code = 'E_ACQUIRE_TIMEOUT';
  override readonly name = 'AcquireTimeoutError';
  constructor(endpoint: string, timeoutMs: number, cause?: unknown) {
    super(
      'E_ACQUIRE_TIMEOUT',
      `Timed out after ${timeoutMs} ms acquiring a connection from endpoint "${endpoint}"`,
      true,
      { endpoint, cause },
    );
  }
}

/** No endpoint of the requested role could serve the call; `cause` is the last refusal. */
export class NoHealthyEndpointError extends ResilientPoolError {
  static override readonly code = 'E_NO_HEALTHY_ENDPOINT';
  override readonly name = 'NoHealthyEndpointError';
  constructor(role: string, cause?: unknown) {
    super('E_NO_HEALTHY_ENDPOINT', `No healthy endpoint can serve a ${role} call`, true, {
      cause,
    });
  }
}

/** `end()` was called: the pool takes no new work. */
export class PoolClosedError extends ResilientPoolError {
  static override readonly code = 'E_POOL_CLOSED';
  override readonly name = 'PoolClosedError';
  constructor() {
    super('E_POOL_CLOSED', 'The resilient pool is closed', false);
  }
}

/**
 * The work may or may not have been applied: the connection was lost, or the endpoint was declared
 * down, while a statement that can write (or a COMMIT) was in flight. Never retried on the caller's
 * behalf; the caller must check. `cause` says what happened.
 */
export class OutcomeUnknownError extends ResilientPoolError {
  static override readonly code = 'E_OUTCOME_UNKNOWN';
  override readonly name: string = 'OutcomeUnknownError';
  constructor(endpoint: string | undefined, cause?: unknown, message?: string) {
    super(
      'E_OUTCOME_UNKNOWN',
      message ??
        `Outcome unknown: a statement that may have written was in flight on endpoint "${endpoint ?? 'unknown'}" when its connection was ended`,
      false,
      { endpoint, cause },
    );
  }
}

/**
 * The connection was lost while COMMIT was in flight, or COMMIT gave no answer in time: the
 * transaction may or may not have been committed. Never re-run; the caller must check.
 */
export class TransactionOutcomeUnknownError extends OutcomeUnknownError {
  override readonly name = 'TransactionOutcomeUnknownError';
  constructor(endpoint: string | undefined, cause?: unknown) {
    super(
      endpoint,
      cause,
      `Outcome unknown: the connection to endpoint "${endpoint ?? 'unknown'}" was lost, or gave no answer in time, while the commit was in flight`,
    );
  }
}

/**
 * `transaction()`'s COMMIT was answered with ROLLBACK: the transaction had already failed (fn
 * went on after an error it caught) and nothing was committed. Thrown when no statement error of
 * the transaction was seen to report instead (it ran on the raw client, say).
 */
export class TransactionRolledBackError extends ResilientPoolError {
  static override readonly code = 'E_ROLLED_BACK';
  override readonly name = 'TransactionRolledBackError';
  constructor(endpoint: string | undefined) {
    super(
      'E_ROLLED_BACK',
      `COMMIT on endpoint "${endpoint ?? 'unknown'}" was answered with ROLLBACK: the transaction had already failed, nothing was committed`,
      false,
      { endpoint },
    );
  }
}

/**
 * The endpoint was declared down (its health probe did not answer, or it was refusing
 * connections): new calls are refused at once until a probe passes, and calls in flight on it
 * were ended. Nothing was sent for a refused call; a read ended in flight may be re-run elsewhere.
 */
export class EndpointDownError extends ResilientPoolError {
  static override readonly code = 'E_ENDPOINT_DOWN';
  override readonly name = 'EndpointDownError';
  /** Why the endpoint was declared down (the probe's failure). */
  readonly reason: string;
  constructor(endpoint: string, reason: string, cause?: unknown) {
    super('E_ENDPOINT_DOWN', `Endpoint "${endpoint}" is down: ${reason}`, true, {
      endpoint,
      cause,
    });
    this.reason = reason;
  }
}

/**
 * The caller's AbortSignal fired. `name` is 'AbortError' so code that checks for aborts the usual
 * way keeps working; `cause` is the signal's reason.
 */
export class AbortedError extends ResilientPoolError {
  static override readonly code = 'E_ABORTED';
  override readonly name = 'AbortError';
  constructor(endpoint: string | undefined, reason: unknown) {
    super(
      'E_ABORTED',
      endpoint ? `Aborted while waiting on endpoint "${endpoint}"` : 'Aborted',
      false,
      { endpoint, cause: reason },
    );
  }
}

/**
 * The call's `timeout` elapsed: whatever it was doing (waiting in a queue, sleeping between
 * retries, running a statement) was stopped; a running statement was cancelled on the server.
 * `name` is 'TimeoutError', as for `AbortSignal.timeout()`.
 */
export class TimeoutError extends ResilientPoolError {
  static override readonly code = 'E_TIMEOUT';
  override readonly name = 'TimeoutError';
  readonly timeoutMs: number;
  constructor(timeoutMs: number, endpoint?: string) {
    super('E_TIMEOUT', `The call did not finish within its timeout of ${timeoutMs} ms`, false, {
      endpoint,
    });
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A write (or a transaction's checkout) waited in the failover buffer for `bufferMs` and no
 * primary took it: the primary's circuit stayed open, it stayed down, or no candidate became
 * writable. Nothing was sent. `cause` is the refusal that made the call wait (CircuitOpenError,
 * EndpointDownError, a connect the server refused, a read-only answer of a demoted primary).
 */
export class FailoverTimeoutError extends ResilientPoolError {
  static override readonly code = 'E_FAILOVER_TIMEOUT';
  override readonly name = 'FailoverTimeoutError';
  readonly bufferMs: number;
  constructor(endpoint: string | undefined, bufferMs: number, cause?: unknown) {
    super(
      'E_FAILOVER_TIMEOUT',
      `No primary took the call within failover.bufferMs (${bufferMs} ms) of waiting for endpoint "${endpoint ?? 'primary'}"`,
      true,
      { endpoint, cause },
    );
    this.bufferMs = bufferMs;
  }
}

/**
 * The failover buffer already held `failover.maxBuffered` calls: this one was refused at once,
 * nothing sent (load shedding during a failover). `cause` is the refusal that would have made it
 * wait.
 */
export class FailoverBufferFullError extends ResilientPoolError {
  static override readonly code = 'E_FAILOVER_BUFFER_FULL';
  override readonly name = 'FailoverBufferFullError';
  readonly maxBuffered: number;
  constructor(endpoint: string | undefined, maxBuffered: number, cause?: unknown) {
    super(
      'E_FAILOVER_BUFFER_FULL',
      `The failover buffer of endpoint "${endpoint ?? 'primary'}" is full (${maxBuffered} calls wait for a primary)`,
      true,
      { endpoint, cause },
    );
    this.maxBuffered = maxBuffered;
  }
}

/**
 * The error a wait or a statement ends with when `signal` fired: the call's own TimeoutError when
 * its deadline fired, else an AbortedError carrying the signal's reason.
 */
export function abortError(
  endpoint: string | undefined,
  signal: { readonly reason: unknown },
): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof TimeoutError) return reason;
  return new AbortedError(endpoint, reason);
}

/**
 * Builds an error without capturing a stack trace. Refusals on the overload path (open circuit,
 * full queue) happen thousands of times a second during an incident; a stack costs microseconds
 * and says nothing the code and endpoint do not.
 */
export function withoutStack<E extends Error>(build: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return build();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
