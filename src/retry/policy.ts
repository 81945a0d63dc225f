/**
 * What may be re-sent: the one rule, consulted by the call path's retry loop and nowhere else,
 * and the marks that tell it whether a failed statement was ever written to a socket.
 */
import { classify, isRetryable } from '../classify.js';

/**
 * Errors known to have happened before the statement was written to the socket: failed
 * connects and clients that were already unusable. Marked where they are caught, read by the
 * retry rule. A WeakSet, so driver errors are not mutated.
 */
const NOT_SENT = new WeakSet<object>();

export function markNotSent<E>(err: E): E {
  if (typeof err === 'object' && err !== null) NOT_SENT.add(err);
  return err;
}

/** Whether the statement behind `err` certainly never reached the server. */
export function wasNotSent(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (NOT_SENT.has(err)) return true;
  // The library's own refusals (open circuit, full queue, acquire timeout) happen before sending.
  const errorClass = classify(err);
  return errorClass === 'unavailable' || (err as { code?: unknown }).code === 'E_ACQUIRE_TIMEOUT';
}

/**
 * Stale-statement refusals (0A000 cached plan changed, 26000 no such statement) of a named
 * statement, after which the connection that ran it has forgotten the statement (pg's
 * `parsedStatements` entry removed, and the server's copy deallocated, or the connection
 * destroyed): the next send of that name on any connection of the pool parses it again. Marked
 * by the statement attempt (endpoint/statement-attempt.ts) once that is done.
 */
const REPREPARABLE = new WeakSet<object>();

export function markRepreparable<E>(err: E): E {
  if (typeof err === 'object' && err !== null) REPREPARABLE.add(err);
  return err;
}

/** Whether `err` is a stale-statement refusal whose connection will prepare it again. */
export function isRepreparable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && REPREPARABLE.has(err);
}

/**
 * The one rule for re-sending a single statement (pgx's SafeToRetry): only when the condition is
 * transient AND the statement cannot have applied twice: nothing was sent, or it ran on a hot
 * standby (which cannot write), or the caller said it is idempotent. A statement that may have
 * run on a writable server is never re-sent on the caller's behalf. Conflicts (40001, 40P01,
 * 55P03) and read-only refusals (25006) are safe too: PostgreSQL applied nothing.
 *
 * A stale named statement (0A000 "cached plan must not change result type", 26000 "prepared
 * statement does not exist") was refused at Bind, before it ran, so it is safe to re-send,
 * once per call (`reprepared` says a re-send of that kind already happened), and only when the
 * connection it failed on has forgotten it, so the re-send parses again. A second stale refusal
 * in the same call, or one the pool could not repair (a statement that names a missing
 * SQL-level `PREPARE`, say), goes to the caller.
 */
export function mayRetryStatement(
  err: unknown,
  idempotent: boolean,
  ranOnHotStandby: boolean,
  reprepared = false,
): boolean {
  if (!isRetryable(err)) return false;
  const errorClass = classify(err);
  if (errorClass === 'stale-statement') return !reprepared && isRepreparable(err);
  if (errorClass === 'conflict' || errorClass === 'read-only') return true;
  return idempotent || ranOnHotStandby || wasNotSent(err);
}
