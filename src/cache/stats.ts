/**
 * The cache's counters and its stats() snapshot. Each read counts once, as exactly one of hit,
 * stale serve, miss or bypass; `coalesced` counts reads (of any outcome) that shared another
 * read's work instead of doing their own.
 */
import type { BreakerState } from '../telemetry/events.js';

/** A plain snapshot of the cache's state and counters (JSON-serialisable; no keys, no values). */
export interface CacheStats {
  /** State of the cache's circuit breaker: while 'open', reads go straight to the database. */
  breaker: BreakerState;
  /** Reads answered with a fresh entry. */
  hits: number;
  /** Reads answered from the database because there was no fresh entry. */
  misses: number;
  /**
   * Reads answered with an entry past its ttl (within `grace`): the refresh failed with a
   * database-availability error, or another instance held the fill lock.
   */
  staleServes: number;
  /** Reads that skipped the cache: breaker open, a store failure, an uncacheable call. */
  bypasses: number;
  /** Reads that joined an identical read already in flight in this process. */
  coalesced: number;
  /** Entries written. */
  fills: number;
  /** Results not stored because their entry exceeded `maxEntryBytes`. */
  oversize: number;
  /** Store calls that failed or timed out (each also counts for the breaker). */
  errors: number;
  /** Store calls among `errors` that got no answer within `timeout`. */
  timeouts: number;
  /**
   * Entries found in the store that failed validation (tampered with, truncated, of the wrong
   * shape, not written by this library). Each was treated as a miss: the read went to the
   * database and the entry was written again.
   */
  corrupt: number;
  /** Tags invalidated (one per tag per `invalidate()` call). */
  invalidations: number;
  /** Tag invalidations that could not be applied (store down); such entries expire by ttl. */
  invalidationFailures: number;
}

export type CacheCounters = Omit<CacheStats, 'breaker'>;

export function newCounters(): CacheCounters {
  return {
    hits: 0,
    misses: 0,
    staleServes: 0,
    bypasses: 0,
    coalesced: 0,
    fills: 0,
    oversize: 0,
    errors: 0,
    timeouts: 0,
    corrupt: 0,
    invalidations: 0,
    invalidationFailures: 0,
  };
}
