/**
 * The store seam of the read-through cache. The cache speaks only to this interface, so Redis,
 * the in-process MemoryStore and test doubles are interchangeable (bentocache's driver/policy
 * split). Every method is a single round trip on one key (or, for `mget`, on keys that share a
 * Redis Cluster hash slot), so a store may sit in front of a Redis Cluster.
 *
 * Values are strings (the codec's output): a store never sees rows, only opaque text.
 */
export interface CacheStore {
  /** The value at `key`, or null when there is none (never set, expired or evicted). */
  get(key: string): Promise<string | null>;
  /**
   * The values at `keys`, in order, null where there is none. The cache only passes keys of one
   * hash slot (tag versions, all under `{tags}`).
   */
  mget(keys: readonly string[]): Promise<Array<string | null>>;
  /**
   * Stores `value` at `key`: with `px`, for that many milliseconds (else without expiry); with
   * `nx`, only when the key holds nothing. Resolves whether the value was written.
   */
  set(key: string, value: string, options: { px?: number; nx?: boolean }): Promise<boolean>;
  /** Removes `key`; resolves whether something was removed. */
  del(key: string): Promise<boolean>;
  /**
   * Adds 1 to the integer at `key` (0 when absent) and raises the result to `atLeast` if it is
   * lower; resolves the new value. Tag versions use it so that a counter lost to eviction (or a
   * flushed store) restarts above every value it had before, never at a value already used.
   */
  incr(key: string, atLeast: number): Promise<number>;
  /** Takes the lock at `key` for `ttl` ms if nobody holds it: `SET key token NX PX ttl`. */
  lock(key: string, token: string, ttl: number): Promise<boolean>;
  /** Releases the lock at `key` only if `token` still holds it (compare-and-delete). */
  unlock(key: string, token: string): Promise<boolean>;
}
