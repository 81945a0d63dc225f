/**
 * The public option types of hedged reads: the pool-wide `hedge` option. They ship in the .d.ts
 * as written, so each option carries its JSDoc and `@default` (the values themselves live in
 * defaults.ts).
 */

/** Settings of hedged reads; passing an object turns hedging on. */
export interface HedgeSettings {
  /**
   * How long a read waits for its first endpoint before it is also sent to a second one, in ms;
   * or `'adaptive'`: the first endpoint's recent latency at `quantile` (its statements over the
   * last minute), kept between `minDelayMs` and `maxDelayMs`. A replica that stops answering
   * keeps the delay it had while it answered, so its reads are hedged after about that long.
   * @default 'adaptive'
   */
  delay?: number | 'adaptive';
  /**
   * With `delay: 'adaptive'`: the quantile of the first endpoint's latency to wait for. At 0.95
   * about one read in twenty of a healthy replica is hedged, which the budget's 5% matches.
   * @default 0.95
   */
  quantile?: number;
  /**
   * With `delay: 'adaptive'`: the shortest delay, in ms, so that a fast replica's jitter (a GC
   * pause, a busy core) does not turn into hedges.
   * @default 5
   */
  minDelayMs?: number;
  /**
   * With `delay: 'adaptive'`: the longest delay, in ms, also used while the endpoint has no
   * recent statements to measure (just started, or just re-admitted).
   * @default 500
   */
  maxDelayMs?: number;
  /**
   * Hedges allowed as a percentage of reads over the last 10 seconds, so that a slow cluster is
   * not sent twice its load: a hedge past the budget is not sent and the read waits for its
   * first endpoint (stats count it in `hedges.budgetRefused`).
   * @default 5
   */
  budgetPercent?: number;
  /**
   * Hedges always allowed per 10 seconds whatever the traffic, so that a quiet service can still
   * hedge; the budget is the larger of this and `budgetPercent` of the reads.
   * @default 10
   */
  budgetMinHedges?: number;
  /**
   * How long the losing statement may go on after the other answered, in ms, before it is
   * cancelled on its server; 0 cancels it at once. A loser that answers meanwhile is simply
   * dropped. Why wait: PostgreSQL cancels through a connection of its own and the pool then
   * destroys the cancelled one, so each cancel costs the server two backend starts, while most
   * losers are a read a moment from its answer; and a loser still holding its connection on a
   * frozen replica keeps that replica looking busy, so `'least-busy'` sends it fewer reads.
   * Measured on the 2-core cluster (8 callers, one replica SIGSTOPped for 3 s): cancelling after
   * 5 ms sent 1177 hedges (p99 5.1 ms, 84k reads), after 250 ms 92 (p99 1.0 ms, 108k reads),
   * after 1 s 47 (p99 1.1 ms, 105k reads); unhedged, p99 0.4 ms but a max of 1.9 s.
   * @default 1000
   */
  cancelAfterMs?: number;
}

/**
 * Hedged reads: a `read()` that has not answered after the hedge delay is sent to a second
 * usable replica as well; the first answer is returned. The other statement may go on for
 * `cancelAfterMs` to finish on its own, and is then cancelled on its server. `true` hedges with
 * the defaults of {@link HedgeSettings}.
 *
 * Where a hedge may go: never to the endpoint that has the read already; to a hot standby
 * always (it cannot write, so running the read twice applied nothing twice); to the primary
 * (the fallback) or another writable server only when the read passes `idempotent: true`.
 * Never hedged: a read that passes `idempotent: false` explicitly (the caller asked that it be
 * sent once), a read that must see a write (`after`, or inside `db.session()`) when no other
 * endpoint has replayed that write, transactions, `connect()` clients and `query()`.
 * @default false
 */
export type HedgeOption = boolean | HedgeSettings;
