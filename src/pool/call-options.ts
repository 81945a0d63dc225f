/** The options of ResilientPool's calls (read, write, connect, end); checked by src/options/call.ts. */
import type { CacheCallOptions } from '../cache/index.js';
import type { ConsistencyToken } from '../consistency/token.js';

/** Options every call takes. */
export interface CallOptions {
  /**
   * Aborts the call: a wait (queue, connect, retry sleep) ends at once, and a running statement
   * is cancelled on the server. The call rejects with AbortedError.
   */
  signal?: AbortSignal;
  /**
   * Bounds the whole call, in ms: queue wait, connect, retries and the statement. When it elapses
   * the statement is cancelled on the server and the call rejects with TimeoutError (E_TIMEOUT).
   * @default undefined (bounded only by the pool's own timeouts)
   */
  timeout?: number;
}

export interface ReadOptions extends CallOptions {
  /**
   * Lets the pool re-send the read after a connection failure even when it may have run on the
   * primary (the fallback). Without it a read is re-sent only when nothing was sent, or when it
   * ran on a hot standby, which cannot write: a read whose functions write is never run twice.
   * With the pool's `hedge` option on, it also decides where the read's hedge may go: left out,
   * to hot standbys only; `true`, also to the primary (the fallback); `false`, the read is never
   * hedged (sent once).
   * @default false
   */
  idempotent?: boolean;
  /**
   * Read only from an endpoint that has replayed up to this consistency token (from
   * `consistencyToken(writeResult)`): a replica that has caught up, else the primary after
   * `routing.consistencyWaitMs`. Never returns data older than the write. Inside `db.session()`
   * the session's latest token applies without passing it. Not combined with `cache`.
   * @default undefined
   */
  after?: ConsistencyToken;
  /**
   * Read through the pool's cache: `true` for the pool's settings, or per-call settings
   * (`{ ttl, grace, tags, key, scope }`). Needs the pool's `cache` option.
   * @default false
   */
  cache?: boolean | CacheCallOptions;
  /**
   * Share one execution with identical reads in flight at the same time (query consolidation):
   * `true` for this read even when the pool's `consolidation` option is off, `false` to run it
   * on its own when the option is on. Applies only to a plain read outside `db.session()`,
   * without `after` or `cache` (see the pool's `consolidation` option). A read that joins may
   * see data as of the shared execution's start. Its own `signal` and `timeout` still apply: it
   * leaves the wait without cancelling the execution, unless no other caller is waiting on it.
   * @default the pool's `consolidation` option (off)
   */
  consolidate?: boolean;
}

export interface WriteOptions extends CallOptions {
  /**
   * Lets the pool re-send the statement after a connection failure even if it may have run
   * (for example an upsert that is safe to apply twice).
   * @default false
   */
  idempotent?: boolean;
  /**
   * Cache tags this write changes: once it succeeds (or fails in a way that may have applied
   * it), every cached read with any of these tags is invalidated, in every instance sharing
   * the cache's Redis. Ignored when the pool has no cache.
   * @default []
   */
  invalidates?: readonly string[];
  /**
   * Capture the write's consistency token (one cheap query after the write, on its connection):
   * read it with `consistencyToken(result)`, pass it as `read(..., { after })`.
   * @default true inside `db.session()`, else false
   */
  captureToken?: boolean;
}

export interface ConnectOptions extends CallOptions {
  /**
   * 'write' checks out a client of the primary; 'read' one of a usable replica (or the primary
   * as fallback).
   * @default 'write'
   */
  role?: 'read' | 'write';
}

export interface EndOptions {
  /**
   * Longest wait for in-flight calls before the wrapped pools are ended anyway, in ms.
   * @default 10000
   */
  timeout?: number;
}
