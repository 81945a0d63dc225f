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

/**
 * Errors of statements the server received but certainly did not apply: it ended the session
 * (57P01 admin_shutdown, a FATAL answered to the statement) before the statement's transaction
 * could commit. Marked by the statement attempt, which alone knows the statement was a single
 * one (see endpoint/statement-attempt.ts); kept with the not-sent marks, as every reader of
 * them (the re-send rule, failover buffering, cache invalidation) asks the same question:
 * can anything of it have been applied?
 */
export function markNotApplied<E>(err: E): E {
  return markNotSent(err);
}

/**
 * Whether the statement behind `err` certainly had no effect: it never reached the server, or
 * the server ended the session before it could commit (`markNotApplied`).
 */
export function wasNotSent(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (NOT_SENT.has(err)) return true;
  // The library's own refusals (open circuit, full queue, acquire timeout) happen before sending.
  const errorClass = classify(err);
  return errorClass === 'unavailable' || (err as { code?: unknown }).code === 'E_ACQUIRE_TIMEOUT';
}

/** pg's errors for a client that was already unusable when the statement was given to it. */
const DEAD_CLIENT_MESSAGES = [
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
];

/**
 * Whether the call took a client that was already dead: its socket refused the statement's
 * bytes (node's error from the `write` system call), or pg knew it was unusable. Its idle
 * neighbours in the pool may be dead too (one network event resets every connection), which the
 * pool learns only once the event loop reads their errors: the retry loop waits for that turn
 * before a retry that would go at once (retry-loop.ts).
 */
export function tookDeadClient(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (wasWriteRefused(err)) return true;
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' && DEAD_CLIENT_MESSAGES.some((m) => message.startsWith(m));
}

/**
 * Whether `err` is node's error from writing to the socket (`syscall: 'write'`, EPIPE or
 * ECONNRESET): the bytes were refused, so what they carried never reached the server.
 */
export function wasWriteRefused(err: unknown): boolean {
  const syscall = (err as { syscall?: unknown } | null | undefined)?.syscall;
  return syscall === 'write' || syscall === 'writev';
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
 * Where a failed statement was sent, as the endpoint was when it was sent: a hot standby or not.
 * The endpoint's role can change before the retry path asks (a standby promoted, its probe then
 * finding it writable), and what matters is where the statement ran: one sent to a standby ran
 * in a read-only transaction. Marked by the statement attempt on the errors it settles with.
 */
const SENT_TO_STANDBY = new WeakMap<object, boolean>();

export function markSentTo<E>(err: E, hotStandby: boolean): E {
  if (typeof err === 'object' && err !== null) SENT_TO_STANDBY.set(err, hotStandby);
  return err;
}

/** Whether the statement behind `err` was sent to a hot standby; undefined when not known. */
export function sentToHotStandby(err: unknown): boolean | undefined {
  return typeof err === 'object' && err !== null ? SENT_TO_STANDBY.get(err) : undefined;
}

/**
 * The one rule for re-sending a single statement (pgx's SafeToRetry): only when the condition is
 * transient AND the statement cannot have applied twice: nothing was sent, or it ran on a hot
 * standby (which cannot write), or the caller said it is idempotent. A statement that may have
 * run on a writable server is never re-sent on the caller's behalf. Conflicts (40001, 40P01,
 * 55P03) and read-only refusals (25006) are safe too: PostgreSQL applied nothing.
 *
 * `ranOnHotStandby` is the endpoint's role now; where the statement attempt recorded what the
 * endpoint was when the statement was sent (`markSentTo`), that wins: a standby promoted since
 * still ran it in a read-only transaction, and a statement sent after its promotion did not.
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
  // Where it was sent, when the attempt knows; the endpoint's role now otherwise.
  const onStandby = sentToHotStandby(err) ?? ranOnHotStandby;
  return idempotent || onStandby || wasNotSent(err);
}
