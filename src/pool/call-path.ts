/**
 * The call path every statement and checkout of the pool takes: route, admit, run on the
 * endpoint's pipeline; only after a failure, the retry loop (retry/retry-loop.ts), which re-enters the router
 * so a read can move to another replica. The rule for what may be re-sent is `mayRetryStatement`
 * (retry/policy.ts), consulted here and nowhere else.
 *
 * With failover buffering (failover-buffering.ts), a call bound for the primary that has sent
 * nothing waits in the failover buffer while the primary is being replaced, instead of failing,
 * and is then tried again, once, on the primary the pool finds.
 *
 * With hedging on (routing/hedge.ts), a statement call that carries a hedge plan (a read() that
 * may be hedged: statements.ts decides) runs as a race on the chosen endpoint and, after the
 * hedge delay, a second one; the race settles as one attempt would, so the retry path is the
 * same. With hedging off no call carries a plan: one branch in `statement()`.
 *
 * No async function on the success path: it costs the endpoint's one promise plus, when retries
 * or failover buffering are on, one `.catch`.
 */
import { classify } from '../classify.js';
import { raceAbort } from '../deadline.js';
import type { Admission } from '../endpoint/admission.js';
import type { Endpoint, Statement } from '../endpoint/endpoint.js';
import { AbortedError, abortError, NoHealthyEndpointError, PoolClosedError } from '../errors.js';
import type { RetryOptions } from '../options/policy-types.js';
import type { PgClientLike, QueryResultLike } from '../pg-like.js';
import { backoffDelay } from '../retry/backoff.js';
import type { RetryBudget } from '../retry/budget.js';
import { mayRetryStatement } from '../retry/policy.js';
import { retryAfterFailure } from '../retry/retry-loop.js';
import type { HedgePlan, Hedging } from '../routing/hedge.js';
import type { CandidatePrimary } from '../routing/primary-candidates.js';
import type { Router } from '../routing/router.js';
import { describeError } from '../telemetry/describe-error.js';
import type { ResilientPoolEvents } from '../telemetry/events.js';
import type { LoggerLike } from '../telemetry/logger.js';
import type { CallKind, CallTelemetry, ObservedCall } from '../telemetry/observer.js';
import type { BufferPlace, FailoverBuffering } from './failover-buffering.js';

export type CallRole = 'read' | 'write';

/** One call, as the path sees it. */
interface Call {
  role: CallRole;
  signal: AbortSignal | undefined;
  /** The caller said the statement may be re-sent even if it may have run. */
  idempotent: boolean;
  /** A read that must go to this endpoint (read-your-writes). */
  pinned: Endpoint | undefined;
  /** Set while telemetry observes the call (metrics, a span, a diagnostics subscriber). */
  observed?: ObservedCall | undefined;
  /** Set once the call has been in the failover buffer; shared by the retry path's copies. */
  buffered?: BufferStay | undefined;
}

/** A call's stay in the failover buffer: its place (turn and bound), and whether it is out. */
interface BufferStay {
  place: BufferPlace;
  /** Let out and being tried; false again once that try settled or the call came back. */
  out: boolean;
}

/** A statement call: `read()`, `write()`, `query()`, cache fills. */
export interface StatementCall extends Call {
  statement: Statement;
  /**
   * Where the read's hedge may go (routing/hedge.ts); undefined: not hedged (hedging off, a
   * write, `query()`, a read passing `idempotent: false`).
   */
  hedge: HedgePlan | undefined;
}

/** What to do on a chosen endpoint: run the statement, or check a client out. */
type Work<C extends Call, T> = (endpoint: Endpoint, admitted: Admission, call: C) => Promise<T>;

const runStatement: Work<StatementCall, QueryResultLike> = (endpoint, admitted, call) =>
  endpoint.execute(admitted, call.statement, call.signal);
const checkOut: Work<Call, PgClientLike> = (endpoint, admitted, call) =>
  endpoint.checkout(admitted, call.signal);

/** A call that failed once and is now in the retry path; built only after a failure. */
type FailedCall<C extends Call> = C & {
  tried: Set<Endpoint>;
  last: Endpoint;
  /** Set when a replica refused a write (25006): the next attempt goes to the primary at once. */
  rerouted: boolean;
  /**
   * The one re-prepare a call gets after a stale named statement (0A000, 26000): 'pending' once
   * allowed, until the next attempt is sent to the same endpoint at once (its connection has
   * forgotten the statement, so it parses again there); 'done' after.
   */
  reprepare: 'none' | 'pending' | 'done';
};

export interface CallPathDeps {
  router: Router;
  retry: Required<RetryOptions>;
  budget: RetryBudget;
  logger: LoggerLike;
  /** With `primary: [candidates]`: writes wait while the writable one is being found. */
  candidates: CandidatePrimary | undefined;
  /** Failover buffering; undefined when it is off (`failover.bufferMs: 0`). */
  failover: FailoverBuffering | undefined;
  /** Aborts (with PoolClosedError) when `end()` is called: every wait of the path ends then. */
  lifetime: AbortSignal;
  onRetry(payload: ResilientPoolEvents['retry']): void;
  /** Metrics, spans and diagnostics channels; undefined when none is configured. */
  telemetry: CallTelemetry | undefined;
  /** Hedged reads; undefined when the `hedge` option is off. */
  hedging: Hedging | undefined;
}

export class CallPath {
  /** Calls in the retry path (they hold no permit while they sleep). */
  private retrying = 0;
  private retriesSettled: (() => void) | undefined;

  constructor(private readonly deps: CallPathDeps) {}

  /**
   * A statement raced against a second endpoint after the hedge delay (routing/hedge.ts); only
   * for calls that carry a plan, which they do only when `deps.hedging` is set. A read that a
   * replica refused as a write (25006) is a write from then on (`mayRetry`): its attempts on the
   * primary are never hedged, since a hedge could reach a writable server and apply it twice.
   */
  private readonly runHedged: Work<StatementCall, QueryResultLike> = (endpoint, admitted, call) =>
    call.role === 'read' && call.hedge !== undefined
      ? (this.deps.hedging as Hedging).run(
          endpoint,
          admitted,
          call.statement,
          call.signal,
          call.hedge,
          call,
        )
      : runStatement(endpoint, admitted, call);

  /** Runs one statement; retried only as `mayRetryStatement` allows. */
  statement(call: StatementCall): Promise<QueryResultLike> {
    const work = call.hedge === undefined ? runStatement : this.runHedged;
    const telemetry = this.deps.telemetry;
    if (telemetry === undefined || !telemetry.active) return this.run(call, work);
    return this.observe(telemetry, 'statement', call, textOf(call.statement), work);
  }

  /** Checks out a client of the role's endpoint; retried only while nothing was sent. */
  checkout(role: CallRole, signal: AbortSignal | undefined): Promise<PgClientLike> {
    const call: Call = { role, signal, idempotent: false, pinned: undefined };
    const telemetry = this.deps.telemetry;
    if (telemetry === undefined || !telemetry.active) return this.run(call, checkOut);
    return this.observe(telemetry, 'checkout', call, undefined, checkOut);
  }

  /** Runs the call observed from start to settlement, each attempt and retry noted. */
  private observe<C extends Call, T>(
    telemetry: CallTelemetry,
    kind: CallKind,
    call: C,
    text: string | undefined,
    work: Work<C, T>,
  ): Promise<T> {
    const observed = telemetry.begin({ kind, role: call.role, text });
    call.observed = observed;
    return observed.run(() => this.run(call, work));
  }

  /** Resolves when no call is between retries. */
  async idle(): Promise<void> {
    while (this.retrying > 0) {
      await new Promise<void>((resolve) => {
        this.retriesSettled = resolve;
      });
      this.retriesSettled = undefined;
    }
  }

  private run<C extends Call, T>(call: C, work: Work<C, T>): Promise<T> {
    const { router, candidates, lifetime, failover } = this.deps;
    if (lifetime.aborted) return Promise.reject(new PoolClosedError());
    if (call.signal?.aborted)
      return Promise.reject(new AbortedError(undefined, call.signal.reason));
    const toPrimary = call.role === 'write' || call.pinned === router.primary;
    if (toPrimary && failover !== undefined) {
      // Behind calls already buffered (they keep their turn), or while the primary is looked
      // for; a call just let out goes on unless a new search began.
      const wait = call.buffered?.out === true ? candidates?.isDiscovering : failover.mustWait;
      if (wait) return this.hold(call, work, failover.cause);
    } else if (candidates?.isDiscovering && toPrimary) {
      // The primary is being looked for: hold the call (nothing sent yet), then send it once.
      return this.waitFor(candidates.settled(), call.signal).then(() => this.run(call, work));
    }
    // A call back from the buffer was counted when it was first made.
    if (call.buffered === undefined) this.deps.budget.recordCall();
    const endpoint = call.pinned ?? (call.role === 'read' ? router.forRead(null) : router.primary);
    if (endpoint === undefined) return Promise.reject(this.noHealthyEndpoint(call, undefined));
    call.observed?.attempt(endpoint);
    const admitted = endpoint.admit();
    // A refusal (closed, down, open circuit, full queue) has nowhere better to go: the router
    // already chose the best endpoint. Reject without entering the retry path, unless the
    // primary is being replaced: then the call waits for the one the pool finds.
    if (admitted.kind === 'refused') {
      if (toPrimary && failover?.shouldHold(admitted.error)) {
        return this.hold(call, work, admitted.error);
      }
      return Promise.reject(admitted.error);
    }
    const attempt = work(endpoint, admitted, call);
    if (toPrimary && failover !== undefined) {
      return attempt.catch((err: unknown) => this.afterPrimaryFailure(err, work, call, endpoint));
    }
    if (this.deps.retry.retries === 0) return attempt;
    return attempt.catch((err: unknown) =>
      this.retryAfterFailure(err, work, failedCall(call, endpoint)),
    );
  }

  /**
   * A call bound for the primary failed, with failover buffering on: it waits for a primary if
   * nothing of it was applied and the primary is being replaced, now or once the retry path has
   * given up on it (the failure that opens the circuit ends the retries).
   */
  private afterPrimaryFailure<C extends Call, T>(
    err: unknown,
    work: Work<C, T>,
    call: C,
    endpoint: Endpoint,
  ): Promise<T> {
    const failover = this.deps.failover;
    if (failover === undefined) return Promise.reject(err);
    if (failover.shouldHold(err)) return this.hold(call, work, err);
    if (this.deps.retry.retries === 0) return Promise.reject(err);
    const failed = failedCall(call, endpoint);
    return this.retryAfterFailure(err, work, failed).catch((last: unknown) =>
      failover.shouldHold(last) ? this.hold(failed, work, last) : Promise.reject(last),
    );
  }

  /**
   * Waits in the failover buffer, then runs the call again (it sent nothing, so this is its one
   * send). A call that comes back keeps its place; `settled()` tells the buffer each try that
   * ended, so the next buffered call can go.
   */
  private hold<C extends Call, T>(call: C, work: Work<C, T>, cause: unknown): Promise<T> {
    const failover = this.deps.failover as FailoverBuffering;
    const stay = call.buffered;
    if (stay?.out === true) {
      stay.out = false;
      failover.returned();
    }
    return failover.hold(cause, call.signal, stay?.place).then((place) => {
      const current: BufferStay = stay ?? { place, out: true };
      current.out = true;
      call.buffered = current;
      return this.run(call, work).finally(() => {
        if (!current.out) return;
        current.out = false;
        failover.settled();
      });
    });
  }

  /**
   * The retry path (the shared loop in retry/retry-loop.ts): each failure goes through the
   * re-send rule and the budget; a read that can move to another endpoint moves at once, anything
   * else waits a full-jitter pause.
   */
  private retryAfterFailure<C extends Call, T>(
    first: unknown,
    work: Work<C, T>,
    call: FailedCall<C>,
  ): Promise<T> {
    const { retry, budget, logger, lifetime } = this.deps;
    if (!this.mayRetry(first, call)) return Promise.reject(first);
    this.retrying++;
    return retryAfterFailure({
      first,
      retries: retry.retries,
      signal: call.signal,
      lifetime,
      attempt: (_, lastError) => this.attemptAgain(call, work, lastError),
      decide: (error, attemptNumber) => {
        if (!this.mayRetry(error, call)) return false;
        if (!budget.tryWithdraw()) {
          logger.warn(
            { endpoint: call.last.name, err: describeError(error) },
            'resilient-pool: retry budget exhausted, not retrying',
          );
          return false;
        }
        // Moving to another endpoint needs no pause; trying the same one again does, except to
        // prepare a stale statement again: the server is fine, only the statement was stale.
        const moving =
          call.rerouted ||
          call.reprepare === 'pending' ||
          (call.role === 'read' && this.deps.router.hasReadAlternative(call.tried));
        call.rerouted = false;
        const delayMs = moving ? 0 : backoffDelay(attemptNumber, retry);
        const reason = classify(error);
        call.last.counters.retries++;
        call.last.counters.retriesByReason[reason]++;
        call.observed?.retry({
          endpoint: call.last,
          attempt: attemptNumber + 1,
          delayMs,
          reason,
          error,
        });
        this.deps.onRetry({ endpoint: call.last.name, attempt: attemptNumber + 1, delayMs, error });
        return delayMs;
      },
    }).finally(() => {
      if (--this.retrying === 0) this.retriesSettled?.();
    });
  }

  private mayRetry(err: unknown, call: FailedCall<Call>): boolean {
    const errorClass = classify(err);
    if (errorClass === 'read-only') {
      // A replica refused a write (25006): the statement belongs on the primary. From the
      // primary itself it means a demoted primary, which retrying here cannot fix.
      if (call.last.role === 'primary') return false;
      // The statement is now known to write: from here on it is re-sent only if nothing was sent.
      call.role = 'write';
      call.idempotent = false;
      call.rerouted = true;
      return true;
    }
    if (errorClass === 'unavailable') {
      // Refused before sending (open circuit, down, full queue): only another endpoint can help,
      // and waiting for the same one would turn a fast refusal into a slow one.
      return call.role === 'read' && this.deps.router.hasReadAlternative(call.tried);
    }
    if (call.role === 'write' && !this.deps.router.primary.breaker.admits) {
      // The failure just opened the primary's circuit: another try would only be refused, and
      // the caller learns more from the failure itself than from CircuitOpenError.
      return false;
    }
    const may = mayRetryStatement(
      err,
      call.idempotent,
      call.last.isHotStandby,
      call.reprepare === 'done',
    );
    // Asked twice about the first failure (before the loop and in it): 'pending' stays allowed.
    if (may && errorClass === 'stale-statement') call.reprepare = 'pending';
    return may;
  }

  private attemptAgain<C extends Call, T>(
    call: FailedCall<C>,
    work: Work<C, T>,
    lastError: unknown,
  ): Promise<T> {
    const { router } = this.deps;
    let endpoint: Endpoint | undefined;
    if (call.reprepare === 'pending') {
      // Back to where the stale statement was forgotten: another endpoint's connections may
      // hold the same stale statement (a replica replays the ALTER TABLE too).
      call.reprepare = 'done';
      endpoint = call.last;
    } else {
      // A read that must see a write: after a failure only the primary is sure to qualify.
      endpoint =
        call.role === 'read' && call.pinned === undefined
          ? router.forRead(call.tried)
          : router.primary;
    }
    if (endpoint === undefined) return Promise.reject(this.noHealthyEndpoint(call, lastError));
    call.tried.add(endpoint);
    call.last = endpoint;
    call.observed?.attempt(endpoint);
    return work(endpoint, endpoint.admit(), call);
  }

  /** Settles as `promise` does, or rejects when the call's signal or the pool's lifetime ends. */
  private waitFor(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    const { lifetime } = this.deps;
    const waiting = signal
      ? raceAbort(promise, signal, () => abortError(undefined, signal))
      : promise;
    return raceAbort(waiting, lifetime, () => lifetime.reason);
  }

  private noHealthyEndpoint(call: Call, cause: unknown): NoHealthyEndpointError {
    return new NoHealthyEndpointError(call.role, cause);
  }
}

/** The call as the retry path tracks it, after its first failure on `endpoint`. */
function failedCall<C extends Call>(call: C, endpoint: Endpoint): FailedCall<C> {
  return {
    ...call,
    tried: new Set([endpoint]),
    last: endpoint,
    rerouted: false,
    reprepare: 'none',
  };
}

/** The statement's text, for telemetry (never its values). */
function textOf(statement: StatementCall['statement']): string | undefined {
  const text = statement.text;
  if (typeof text === 'string') return text;
  const configured = (text as { text?: unknown } | null | undefined)?.text;
  return typeof configured === 'string' ? configured : undefined;
}
