/**
 * The public option types of the guards on every call's path: the circuit breaker, retry, the
 * wait queue and routing. They ship in the .d.ts as written, so each option carries its JSDoc and
 * `@default` (the values themselves live in defaults.ts).
 */
import type { BalancerKind } from '../routing/balancers/balancer.js';
import type { AdaptiveLimitOption } from './adaptive-limit-types.js';

/** Circuit breaker per endpoint (opossum). Only health failures count; SQL errors do not. */
export interface BreakerOptions {
  /**
   * Set false to never open circuits (failures are still counted in stats).
   * @default true
   */
  enabled?: boolean;
  /**
   * Percentage of failed calls in the rolling window above which the circuit opens.
   * @default 50
   */
  errorThresholdPercentage?: number;
  /**
   * Calls needed in the rolling window before the error percentage is trusted.
   * @default 10
   */
  volumeThreshold?: number;
  /**
   * Consecutive health failures that open the circuit regardless of the percentage (0 turns this
   * off). Catches an endpoint that dies after a long run of successes, which the percentage over
   * the rolling window would take many failures to notice.
   * @default 5
   */
  consecutiveFailures?: number;
  /**
   * Time an open circuit waits before letting one probe call through (half-open), in ms.
   * @default 5000
   */
  resetTimeout?: number;
  /**
   * A statement still running after this long (ms) counts once as a health failure against its
   * endpoint's circuit, while it is still in flight (Resilience4j's `slowCallDurationThreshold`),
   * so a server that stops answering opens the circuit even though its calls never fail. Noticed
   * between 1 and 1.5 times this after the statement was sent; 0 turns it off. Set it above your
   * longest legitimate statement: slow-but-answering calls count like failures.
   * @default 30000
   */
  slowCallMs?: number;
  /**
   * Length of the rolling window of call statistics, in ms.
   * @default 10000
   */
  rollingCountTimeout?: number;
  /**
   * Buckets in the rolling window; must divide `rollingCountTimeout` evenly.
   * @default 10
   */
  rollingCountBuckets?: number;
}

/**
 * Retry of calls that failed before anything was sent (acquire timeout, connection refused, open
 * circuit on one replica), with exponential backoff and full jitter: the n-th retry waits a random
 * time in [0, min(maxTimeout, minTimeout * factor^(n-1))].
 */
export interface RetryOptions {
  /**
   * Retries after the first attempt (0 disables retry).
   * @default 3
   */
  retries?: number;
  /**
   * Backoff cap of the first retry, in ms.
   * @default 25
   */
  minTimeout?: number;
  /**
   * Largest backoff cap, in ms.
   * @default 1000
   */
  maxTimeout?: number;
  /**
   * Growth of the backoff cap per retry.
   * @default 2
   */
  factor?: number;
  /**
   * Retries allowed as a percentage of calls in the last 10 seconds, so that retries cannot
   * multiply the load on a failing database.
   * @default 10
   */
  budgetPercent?: number;
  /**
   * Retries always allowed per 10 seconds regardless of traffic, so a quiet service can still retry.
   * @default 10
   */
  budgetMinRetries?: number;
}

/** The bounded wait queue in front of each endpoint. */
export interface QueueOptions {
  /**
   * Most calls waiting for a connection per endpoint; one more is refused at once with
   * QueueFullError instead of piling up.
   * @default 200
   */
  maxWaiting?: number;
  /**
   * Longest wait for a connection (queue plus connect), in ms, before AcquireTimeoutError.
   * @default 2000
   */
  acquireTimeout?: number;
  /**
   * Sheds load by the queue's age rather than its length: while the oldest call waiting at an
   * endpoint has waited longer than this (in ms), or a new call would wait longer by how fast the
   * queue drains, and the endpoint is still completing calls, the new call is refused at once with
   * QueueFullError (the router tries another replica first). A
   * burst that drains in time still waits; a queue that stands because calls arrive faster than
   * the endpoint serves them is cut to about this much waiting, so admitted calls keep their
   * latency and the excess is refused in microseconds. An endpoint that completes nothing (a
   * hang) keeps the count bound. 0: off, only `maxWaiting` bounds the queue.
   * @default 0
   */
  maxQueueDelayMs?: number;
  /**
   * Per endpoint, let through only as many calls as the server can serve without queueing,
   * following the measured time of statements on the server (Gradient2 or Vegas, as in Netflix
   * concurrency-limits); see AdaptiveLimitOption. The rest wait in the queue above, or are
   * refused with QueueFullError once `maxWaiting` wait: pair it with `maxQueueDelayMs` (or a short
   * queue) to shed load.
   * @default false
   */
  adaptiveLimit?: AdaptiveLimitOption;
}

/** Where calls go. */
export interface RoutingOptions {
  /**
   * How `read()` picks among usable replicas.
   * @default 'least-busy'
   */
  balancer?: BalancerKind;
  /**
   * Where `query()` goes: 'primary' (always, as a drop-in pg.Pool is expected to), or 'auto' (a
   * conservative classifier sends plain SELECT/SHOW/EXPLAIN/VALUES/TABLE to replicas).
   * @default 'primary'
   */
  queryRouting?: 'primary' | 'auto';
  /**
   * A replica whose replay is further behind the primary than this (ms) gets no reads until it
   * catches up (pgpool-II's delay_threshold, ProxySQL's max_replication_lag). An idle primary
   * does not count as lag. Needs the health monitor.
   * @default undefined (no limit)
   */
  maxLagMs?: number;
  /**
   * Like `maxLagMs`, in bytes of WAL not yet replayed (primary position minus replay position).
   * @default undefined (no limit)
   */
  maxLagBytes?: number;
  /**
   * A read that must see a write (`after` a consistency token, or inside `db.session()`) waits
   * this long (ms) for a replica to replay up to the write, then reads from the primary.
   * @default 100
   */
  consistencyWaitMs?: number;
  /**
   * Let reads use the primary when no replica is usable; when false such reads fail with
   * NoHealthyEndpointError.
   * @default true
   */
  fallbackToPrimary?: boolean;
}
