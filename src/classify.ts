/**
 * What an error says about the database and whether trying again can help. Classification runs
 * only after a failure, never on the success path.
 *
 * The table follows PostgreSQL's SQLSTATE classes (Appendix A of the manual) and its advice on
 * serialization failures (13.5); docs/errors.md explains every entry.
 */
import { ResilientPoolError } from './errors.js';

/**
 * - `connection`: the server could not be reached or the connection was lost.
 * - `timeout`: no connection in time, or no answer in time (client-side `query_timeout`,
 *   server-side `statement_timeout`).
 * - `resource`: the server is out of something (connections, memory, disk): SQLSTATE class 53.
 * - `unavailable`: this library refused the call before sending anything (open circuit, full
 *   queue, no healthy endpoint).
 * - `conflict`: serialization failure, deadlock or lock not available; re-running the whole
 *   transaction may succeed.
 * - `read-only`: a write reached a server in recovery (a replica, or a demoted primary).
 * - `stale-statement`: the server refused a named prepared statement at Bind, before running
 *   it: its cached plan no longer matches the table (0A000 "cached plan must not change result
 *   type", after an `ALTER TABLE`), or the server does not have it (26000, after a failover, a
 *   `DISCARD ALL`, or through transaction-mode PgBouncer). Preparing it again can succeed.
 * - `outcome-unknown`: the work may or may not have been applied; never retry blindly.
 * - `aborted`: the caller's AbortSignal fired.
 * - `permanent`: everything else (SQL errors, constraint violations, bad options, closed pool):
 *   the same call will fail the same way.
 */
export type ErrorClass =
  | 'connection'
  | 'timeout'
  | 'resource'
  | 'unavailable'
  | 'conflict'
  | 'read-only'
  | 'stale-statement'
  | 'outcome-unknown'
  | 'aborted'
  | 'permanent';

const SOCKET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/**
 * node-postgres reports some transport failures only by message. Matched on prefixes of the
 * messages pg and pg-pool 8.x produce.
 */
const DRIVER_MESSAGES: ReadonlyArray<readonly [string, ErrorClass]> = [
  ['Connection terminated', 'connection'],
  ['Client has encountered a connection error', 'connection'],
  ['Client was closed and is not queryable', 'connection'],
  ['terminating connection', 'connection'],
  ['timeout exceeded when trying to connect', 'timeout'],
  ['Query read timeout', 'timeout'],
];

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** A hot standby's refusal of a function that writes WAL (brin_summarize_range, ...), as 55000. */
const RECOVERY_IN_PROGRESS = /recovery is in progress/i;

/** The one feature_not_supported (0A000) that a fresh Parse repairs (plancache.c). */
const CACHED_PLAN_CHANGED = /cached plan must not change result type/i;

function classifySqlState(state: string, message: string | undefined): ErrorClass {
  switch (state) {
    case '08007': // transaction_resolution_unknown
    case '40003': // statement_completion_unknown
      return 'outcome-unknown';
    case '40001': // serialization_failure
    case '40P01': // deadlock_detected
    case '55P03': // lock_not_available
      return 'conflict';
    case '25006': // read_only_sql_transaction
      return 'read-only';
    case '55000': // object_not_in_prerequisite_state: 'recovery is in progress' is a standby's refusal
      return message !== undefined && RECOVERY_IN_PROGRESS.test(message)
        ? 'read-only'
        : 'permanent';
    case '26000': // invalid_sql_statement_name: the prepared statement does not exist (any more)
      return 'stale-statement';
    case '0A000': // feature_not_supported: only a changed result type under a cached plan is stale
      return message !== undefined && CACHED_PLAN_CHANGED.test(message)
        ? 'stale-statement'
        : 'permanent';
    case '57P01': // admin_shutdown
    case '57P02': // crash_shutdown
    case '57P03': // cannot_connect_now (starting up, shutting down, in recovery)
      return 'connection';
    case '57014': // query_canceled (statement_timeout, or a cancel request)
      return 'timeout';
  }
  if (state.startsWith('08')) return 'connection';
  if (state.startsWith('53')) return 'resource';
  return 'permanent';
}

const LIBRARY_CLASSES: Readonly<Record<string, ErrorClass>> = {
  E_CIRCUIT_OPEN: 'unavailable',
  E_QUEUE_FULL: 'unavailable',
  E_NO_HEALTHY_ENDPOINT: 'unavailable',
  E_ACQUIRE_TIMEOUT: 'timeout',
  E_OUTCOME_UNKNOWN: 'outcome-unknown',
  E_ENDPOINT_DOWN: 'unavailable',
  E_ABORTED: 'aborted',
  E_TIMEOUT: 'timeout',
  // Refused (or given up) in the failover buffer: nothing was sent.
  E_FAILOVER_TIMEOUT: 'unavailable',
  E_FAILOVER_BUFFER_FULL: 'unavailable',
};

/** Classifies any error thrown by a call (this library's, PostgreSQL's, pg's or Node's). */
export function classify(err: unknown): ErrorClass {
  if (err instanceof ResilientPoolError) return LIBRARY_CLASSES[err.code] ?? 'permanent';
  if (typeof err !== 'object' || err === null) return 'permanent';
  const { code, message, name } = err as { code?: unknown; message?: unknown; name?: unknown };
  if (typeof code === 'string') {
    if (SOCKET_ERROR_CODES.has(code)) return 'connection';
    if (SQLSTATE.test(code)) {
      return classifySqlState(code, typeof message === 'string' ? message : undefined);
    }
  }
  if (name === 'AbortError') return 'aborted';
  if (typeof message === 'string') {
    for (const [prefix, errorClass] of DRIVER_MESSAGES) {
      if (message.startsWith(prefix)) return errorClass;
    }
  }
  return 'permanent';
}

/**
 * Whether the condition is transient, so that trying again can succeed. This says nothing about
 * whether a statement may be re-sent: the pool re-sends only work that never reached the server,
 * or that the caller marked idempotent. A `stale-statement` counts as transient: on a connection
 * that prepares the statement again (which the pool arranges, see retry/policy.ts) it succeeds.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ResilientPoolError) return err.retryable;
  switch (classify(err)) {
    case 'connection':
    case 'resource':
    case 'conflict':
    case 'read-only':
    case 'stale-statement':
      return true;
    case 'timeout':
      // A statement_timeout (57014) will likely fire again; a lost answer may not.
      return (err as { code?: unknown }).code !== '57014';
    default:
      return false;
  }
}

/**
 * Whether the error says something about the endpoint's health, and so counts against its circuit
 * breaker. SQL errors (23505, 42P01, ...), conflicts and statement timeouts do not: the server
 * answered.
 */
export function isHealthFailure(err: unknown): boolean {
  // The caller's own deadline or abort says nothing about the server.
  if (err instanceof ResilientPoolError && err.code !== 'E_ACQUIRE_TIMEOUT') {
    return err.code === 'E_OUTCOME_UNKNOWN';
  }
  switch (classify(err)) {
    case 'connection':
    case 'resource':
    case 'outcome-unknown':
      return true;
    case 'timeout':
      return (err as { code?: unknown }).code !== '57014';
    default:
      return false;
  }
}

/**
 * Whether `err` is the server's own ErrorResponse (pg's DatabaseError: a SQLSTATE and a severity),
 * as opposed to an error raised in the client (a value pg could not serialise, a malformed call,
 * a lost connection). After the server's answer the connection is in a known state; after a
 * client-side error it may not be, so it is never reused.
 *
 * A FATAL (or PANIC) ErrorResponse, or any of class `connection` (08xxx, 57P01-57P03), is not
 * such an answer: the server, or PgBouncer in front of it ("server login has been failing",
 * "query_wait_timeout", both FATAL 08P01), closes the connection after it. Such an error says the
 * endpoint is unwell rather than that it answered. The class covers servers whose `lc_messages`
 * translates the severity.
 */
export function isServerError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, severity } = err as { code?: unknown; severity?: unknown };
  if (typeof severity !== 'string' || typeof code !== 'string' || !SQLSTATE.test(code)) {
    return false;
  }
  if (severity === 'FATAL' || severity === 'PANIC') return false;
  return classify(err) !== 'connection';
}

/**
 * Whether `err` is the server's 57P01 (admin_shutdown) ErrorResponse, always a FATAL: the backend was told
 * to terminate (`pg_terminate_backend()`, a smart or fast shutdown) or found its postmaster gone,
 * and ended the session. A backend ends that way only after aborting its transaction: the one
 * case where it is told to terminate after committing locally (its wait for synchronous
 * replication) sends a WARNING and shuts off its output instead (syncrep.c), so that answer never
 * comes. So a single statement answered with this error did not commit; whether the answer was
 * the statement's own is for the caller to judge (see endpoint/statement-attempt.ts).
 * 57P02 (crash_shutdown) is not such an answer: a backend quits on SIGQUIT at any point, after a
 * commit too, and 57P03 (cannot_connect_now) only ever answers a connection attempt.
 */
export function isTerminatedSession(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, severity } = err as { code?: unknown; severity?: unknown };
  // 57P01 is only ever raised as FATAL; the severity may be translated (lc_messages).
  return code === '57P01' && typeof severity === 'string';
}
