/**
 * The public option type of failover buffering: writes that wait, for a bounded time, for a
 * primary to take them instead of failing while the primary is being replaced. It ships in the
 * .d.ts as written, so each option carries its JSDoc and `@default` (the values themselves live in
 * the defaults table).
 */

/**
 * Failover buffering (Vitess's buffering during a reparent). While the primary refuses calls
 * because it is being replaced (its circuit is open, it is declared down, it answered read-only
 * (25006), or the primary candidates are being asked which is writable), a write, a `query()` sent
 * to the primary and a transaction's checkout that have sent nothing wait in one FIFO buffer
 * instead of failing. They are sent once, oldest first, to the primary the pool finds (a promoted
 * candidate, or the same server once its half-open probe or health probe passes). A call whose
 * statement was already on the wire is never buffered: it fails as before.
 *
 * Each buffered call honours its own `timeout` and `signal`; `end()` fails the buffered calls
 * with PoolClosedError at once.
 *
 * @example
 * // A single primary address behind which failovers happen (Patroni behind HAProxy, RDS):
 * new ResilientPool({ primary: pool, failover: { bufferMs: 15_000 } });
 */
export interface FailoverOptions {
  /**
   * Longest time (ms) a call waits in the buffer for a primary, counted from when it first
   * entered it; it then fails with FailoverTimeoutError (`E_FAILOVER_TIMEOUT`, nothing sent,
   * `cause`: the refusal that made it wait). 0 turns buffering off: such calls fail at once, as
   * without this option.
   *
   * With a list of primary candidates the pool can find a new primary itself, so buffering is
   * on. With a single primary no other server can take over unless a failover happens behind
   * its one address (a restart, a virtual IP, a DNS name that moves, a proxy), which the pool
   * cannot know: buffering would then only turn a fast refusal into a slow one, so it is off
   * unless you set it.
   * @default 10000 with a list of primary candidates; 0 (off) with a single primary
   */
  bufferMs?: number;
  /**
   * Most calls the buffer holds at once; one more is refused at once with
   * FailoverBufferFullError (`E_FAILOVER_BUFFER_FULL`, nothing sent), so a long outage under load
   * cannot pile up without bound.
   * @default 1000
   */
  maxBuffered?: number;
}
