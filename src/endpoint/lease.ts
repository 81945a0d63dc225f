/**
 * Ownership of the pg clients this library takes out of a pool. From the moment a pool hands a
 * client over until it goes back (or is destroyed), exactly one lease owns it: a statement being
 * run, or a client held by the caller of `connect()`.
 *
 * pg-pool listens for 'error' on a client only while it is idle; a connection that fails while
 * checked out (a reset mid-statement, a FATAL in the same TCP chunk as a result) emits 'error' on
 * a client nobody listens to, and Node ends the process. So each client gets one permanent
 * listener, installed the first time the library takes it, that forwards the error to whichever
 * lease owns the client at the time, and swallows it when none does (pg-pool's own listener
 * reports idle errors).
 */
import type { PgClientLike } from '../pg-like.js';

/** Something that owns a checked-out client and must hear when its connection fails. */
export interface Lease {
  connectionLost(err: Error): void;
}

/**
 * A lease the endpoint tracks while it is out: it can be ended from outside (the endpoint was
 * declared down, or `end()` ran out of time), and a statement in it can be found slow.
 */
export interface ActiveLease extends Lease {
  /** Ends the lease now: its connection is destroyed and its call settles with `reason`. */
  kill(reason: Error): void;
  /**
   * The endpoint's generation when the current statement was sent, or -1 while no statement of
   * ours is in flight (connecting, or a client held by the caller).
   */
  readonly sentAt: number;
  /** Set once the lease's statement was counted as slow, so it counts once. */
  slowCounted: boolean;
  /** Its neighbours in the endpoint's ActiveLeases (active-leases.ts), which alone sets them. */
  listPrev: ActiveLease | undefined;
  listNext: ActiveLease | undefined;
}

const OWNER = Symbol('resilient-pool.owner');

interface Owned {
  [OWNER]?: Lease | null;
}

/** Makes `lease` the owner of `client`, installing the permanent listener on first use. */
export function adopt(client: PgClientLike, lease: Lease): void {
  const owned = client as PgClientLike & Owned;
  if (owned[OWNER] === undefined) {
    client.on?.('error', (err: Error) => owned[OWNER]?.connectionLost(err));
  }
  owned[OWNER] = lease;
}

/** Forgets the owner: errors from now on are swallowed here (and reported by pg-pool if idle). */
export function disown(client: PgClientLike): void {
  (client as PgClientLike & Owned)[OWNER] = null;
}

/**
 * Closes the client's socket at once. pg's `end()` sends Terminate and waits for the server to
 * close, which a frozen server never does; a destroyed socket is gone whatever the server does.
 */
export function destroySocket(client: PgClientLike): void {
  const stream = (client as { connection?: { stream?: { destroy?: () => void } } }).connection
    ?.stream;
  stream?.destroy?.();
}

/** pg errors of a client that was already unusable: the statement was never written. */
const CLIENT_DEAD_MESSAGES = [
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
];

export function wasClientDead(err: Error): boolean {
  const message = err.message;
  return typeof message === 'string' && CLIENT_DEAD_MESSAGES.some((m) => message.startsWith(m));
}
