/**
 * The public option types of hung-endpoint detection and recovery: outlier ejection (a replica
 * that stops answering stops getting reads before its circuit would open), slow start (a replica
 * that comes back gets a share of reads that ramps up) and connection pacing (after an outage,
 * new connections are opened one, then two, four, ...). They ship in the .d.ts as written, so
 * each option carries its JSDoc and `@default` (the values themselves live in the defaults table).
 */

/**
 * Outlier ejection of replicas (Envoy's outlier detection, PgDog's bans). A replica is ejected
 * from read routing when it has gone silent: a health probe sent to it has had no answer for
 * `slowMs` and nothing else it was sent was answered meanwhile. Only time on the wire counts
 * (from when the statement or probe was written to the connection): waiting in the pool's own
 * queue, or for a client another caller holds, is never the server's. A statement of the
 * caller's waiting past `slowMs / 2` with no answer from the server sends that probe at once
 * instead of at the next round.
 *
 * A server that is busy but answering (a burst, a long report on one connection) is not silent,
 * so it is never ejected; a server that answers nothing for `slowMs`, probe included, is frozen,
 * black-holed or stalled, whatever the reason.
 *
 * An ejected replica is re-admitted (through slow start) once a probe is answered within
 * `slowMs`: one is sent as soon as the replica answers anything again. At most
 * `maxEjectionPercent` of the replicas are ejected at once (the longest silent first; one is
 * always allowed). When every replica is out of routing while some are out only as outliers,
 * reads go to those anyway (panic routing, as Envoy and PgDog do) rather than to the primary:
 * silence that takes out every replica at once is more likely a fault between here and them than
 * every server hung, and moving the whole read load onto the primary on that inference could
 * overload the server writes depend on. The hard guards still apply (a probe that times out
 * declares the replica down, an open circuit refuses), and then the primary takes the reads as
 * usual. Needs the health monitor (`health.enabled`).
 *
 * @example
 * new ResilientPool({ primary, replicas, outlier: { slowMs: 1_000 } }); // replicas far away
 */
export interface OutlierOptions {
  /**
   * Set false to route by the health monitor and the circuits alone.
   * @default true
   */
  enabled?: boolean;
  /**
   * How long (ms) a replica may leave a probe unanswered, answering nothing else either, before
   * it is ejected. Keep it above the replica's round trip plus a connection's setup (the probe
   * reconnects after a failure): a replica across the world at 150 ms RTT needs about 1000. It
   * only has an effect below `health.timeoutMs`, when the health monitor declares the replica
   * down anyway. Under traffic, ejection comes about 1.25 to 1.75 times `slowMs` after the
   * server went silent (a quarter to a half of `slowMs` until a statement asks for the probe,
   * then `slowMs` plus the check's granularity, a quarter of it).
   * @default 500
   */
  slowMs?: number;
  /**
   * Most replicas ejected at once, as a percentage of all replicas (Envoy's
   * `max_ejection_percent`); one replica can always be ejected. The longest silent go first.
   * @default 50
   */
  maxEjectionPercent?: number;
}

/**
 * Slow start (Envoy's): a replica coming back from an outage (re-admitted by the health monitor
 * or after an outlier ejection, up again after being declared down, or its circuit closed again)
 * gets a share of reads that ramps linearly from `minWeightPercent` to its full weight over
 * `windowMs`, so that a cold cache or a server still recovering is not handed its whole share at
 * once. Coming back from lag (`routing.maxLagMs`) does not ramp: the server was fine.
 *
 * Every balancer honours the share: 'weighted' multiplies the weight by it, 'random' draws with
 * it as the weight, 'round-robin' and 'least-busy' let the replica take part in that fraction of
 * the picks. The primary has no share to ramp (writes have nowhere else to go); it is protected
 * by connection pacing instead. Outside a ramp the balancers do no extra work.
 */
export interface SlowStartOptions {
  /**
   * How long (ms) the ramp lasts; 0 turns slow start off.
   * @default 5000
   */
  windowMs?: number;
  /**
   * The share at the start of the ramp, as a percentage of the replica's full share, so that it
   * is sent some reads at once and the ramp has answers to build on.
   * @default 10
   */
  minWeightPercent?: number;
}

/**
 * Connection pacing after an outage (storm control). When an endpoint is declared down or its
 * circuit opens, the new connections it may open are paced from then on: one at a time at first
 * (one probe connection), then twice as many at once after each round that all connected, up to
 * the wrapped pool's `max`, when pacing ends. A failed connection starts again at one. A call
 * that would open a connection beyond that waits for a client to come back to the pool or for
 * the allowance to grow, within its acquire timeout and signal; running out of time there counts
 * as local saturation, never against the circuit.
 *
 * Clients already open are used as usual: only opening new connections waits.
 */
export interface ConnectPacingOptions {
  /**
   * Set false to let the wrapped pools open connections as fast as calls ask for them.
   * @default true
   */
  enabled?: boolean;
}
