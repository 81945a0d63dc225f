/**
 * What the cache did for a result, kept beside the result rather than on it: pg's result object
 * is returned as pg made it (no extra property to surprise a serialiser or a deep-equal), and the
 * information goes when the result is collected.
 */

/** How a cached read was answered. */
export interface CacheInfo {
  /** True when the rows came from the cache (fresh or stale), false when from the database. */
  readonly hit: boolean;
  /** True when the entry was past its ttl and served within `grace`. */
  readonly stale: boolean;
  /**
   * The entry's key. For a read that bypassed the cache it is the key without tag versions
   * (they were not read), or '' when the scope could not be determined.
   */
  readonly key: string;
  /** True when the cache was skipped (breaker open, store failure, uncacheable call). */
  readonly bypassed: boolean;
}

const infos = new WeakMap<object, CacheInfo>();

/**
 * How the cache answered the read that returned `result`; undefined for a result that did not
 * come through the cache (no `cache` option, a write, a transaction).
 *
 * @example
 * const r = await db.read('SELECT * FROM users WHERE id = $1', [id], { cache: true });
 * cacheInfo(r); // { hit: true, stale: false, key: 'rp:@3q2-7wJd…:~:Yq3…', bypassed: false }
 */
export function cacheInfo(result: unknown): CacheInfo | undefined {
  return typeof result === 'object' && result !== null ? infos.get(result) : undefined;
}

/** Records the info of a result this cache returns. */
export function setCacheInfo(result: unknown, info: CacheInfo): void {
  if (typeof result === 'object' && result !== null) infos.set(result, info);
}
