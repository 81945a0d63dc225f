/**
 * Which endpoint serves a call: reads to a usable replica chosen by the balancer, then the primary
 * as fallback; writes to the primary. Health comes from each endpoint (circuit, queue), and, when
 * the pool has them, from outlier ejection (outlier-ejection.ts) and slow start (slow-start.ts).
 *
 * Panic routing. When every replica is out of routing and some of them are out only as outliers
 * (silent, but not declared down, their circuits closed), reads go to those anyway rather than to
 * the primary, as Envoy's panic threshold and PgDog's "un-ban all" do. An outlier ejection is an
 * inference from silence; when it has taken out every replica the inference is more likely wrong
 * (a network path, our own process) than every replica hung at once, and moving the whole read
 * load onto the primary on an inference can overload the one server writes depend on. The hard
 * guards still apply: a replica whose probe times out is ejected by the health monitor (and
 * declared down when nothing answers), one whose circuit opens is refused, and then the primary
 * takes the reads as before.
 *
 * Saturation is not an outage. The primary takes reads only when no replica can take them for
 * a reason of health: declared down, circuit not closed, ejected or lagging by the health
 * monitor, ejected as an outlier (or every healthy one already failed this call). A replica whose
 * only problem is a full queue is back-pressure: the read is sent to the least loaded such
 * replica, whose admission refuses it at once with QueueFullError, rather than into the primary's
 * queue, where it would take the slots writes need (a read burst would otherwise turn into
 * E_QUEUE_FULL on writes). An application that wants the primary to take part of the read load
 * under pressure gives it a bounded share explicitly: a second pg pool to the primary, with a
 * small `max`, listed among the replicas (docs/replicas.md).
 *
 * The read path allocates nothing: the predicates are built once, and with no replica ejected
 * the outlier check is one comparison per replica.
 */
import type { Endpoint } from '../endpoint/endpoint.js';
import type { ResilientPoolEvents } from '../telemetry/events.js';
import type { Balancer } from './balancers/balancer.js';
import type { OutlierDetector } from './outlier-ejection.js';
import type { SlowStart } from './slow-start.js';

const isUsable = (endpoint: Endpoint): boolean => endpoint.isUsable();

export type { RoutingState } from '../telemetry/events.js';

/** A change of an endpoint's routing state, as the 'routing' event reports it. */
export type RoutingChange = ResilientPoolEvents['routing'];
type RoutingState = RoutingChange['state'];

/** What the router does beyond plain balancing; absent parts are off. */
export interface RouterRecovery {
  outliers?: OutlierDetector<Endpoint>;
  slowStart?: SlowStart<Endpoint>;
  /** Called from `sweep()` for each endpoint whose routing state changed. */
  onChange?(change: RoutingChange): void;
}

/** An endpoint's share of reads: 1 unless slow start has lowered it. */
function shareOf(endpoint: Endpoint): number {
  return endpoint.share;
}

export class Router {
  private readonly outliers: OutlierDetector<Endpoint> | undefined;
  private readonly slowStart: RouterRecovery['slowStart'];
  private readonly onChange: RouterRecovery['onChange'];
  /** Usable and not ejected as an outlier: the first choice for every read. */
  private readonly isRoutable: (endpoint: Endpoint) => boolean;
  /** `pickReplica`'s predicate, combined with the outlier check without a closure per call. */
  private accepting: ((endpoint: Endpoint) => boolean) | undefined;
  private readonly acceptedAndRoutable = (endpoint: Endpoint): boolean =>
    !this.isOutlier(endpoint) && (this.accepting as (endpoint: Endpoint) => boolean)(endpoint);
  /** Routing state of each endpoint at the last sweep, primary first (for change events). */
  private readonly states: RoutingState[];

  constructor(
    readonly primary: Endpoint,
    readonly replicas: readonly Endpoint[],
    private readonly balancer: Balancer<Endpoint>,
    private readonly fallbackToPrimary: boolean,
    recovery: RouterRecovery = {},
  ) {
    this.outliers = recovery.outliers;
    this.slowStart = recovery.slowStart;
    this.onChange = recovery.onChange;
    this.isRoutable =
      this.outliers === undefined
        ? isUsable
        : (endpoint) => !this.isOutlier(endpoint) && endpoint.isUsable();
    this.states = [primary, ...replicas].map(() => 'routed');
  }

  /**
   * The endpoint for a read, avoiding `exclude` (endpoints that already failed this call) while
   * another choice exists: a replica that can admit it; else the primary if it takes reads now
   * (`primaryTakesReads`); else a replica that failed this call; else a healthy replica whose
   * queue is full, which refuses it. Undefined when no replica is healthy and fallback is off.
   * With no replicas configured at all the primary serves reads.
   */
  forRead(exclude: ReadonlySet<Endpoint> | null): Endpoint | undefined {
    const replicas = this.replicas;
    if (replicas.length === 0) return this.primary;
    const replica = this.balancer.pick(replicas, this.isRoutable, exclude);
    if (replica !== undefined) return replica;
    if (this.isPanicking()) {
      const outlier = this.balancer.pick(replicas, isUsable, exclude);
      if (outlier !== undefined) return outlier;
    }
    if (this.primaryTakesReads(exclude)) return this.primary;
    // A replica that failed this call but can admit it is still better than none.
    if (exclude !== null) {
      const again = this.balancer.pick(replicas, isUsable, null);
      if (again !== undefined) return again;
    }
    // Healthy but saturated: refused there (QueueFullError), never spilled onto the primary.
    return this.leastLoadedHealthy(exclude);
  }

  /**
   * Whether the primary may serve a read now: there are no replicas, or fallback is on and no
   * replica outside `exclude` is healthy (saturated replicas count as healthy: see the header).
   * What `forRead` and `hasReadAlternative` decide by; other read paths (hedges) ask it too.
   */
  primaryTakesReads(exclude: ReadonlySet<Endpoint> | null): boolean {
    if (this.replicas.length === 0) return true;
    return this.fallbackToPrimary && this.leastLoadedHealthy(exclude) === undefined;
  }

  /**
   * Whether a read could go somewhere other than the endpoints in `exclude`. Asks the endpoints
   * directly rather than the balancer, so that checking does not use up a balancer's turn. A
   * replica ejected as an outlier counts: in panic routing it would be chosen. The primary counts
   * only when it would take the read (`primaryTakesReads`): a saturated replica is no reason.
   */
  hasReadAlternative(exclude: ReadonlySet<Endpoint>): boolean {
    for (const replica of this.replicas) {
      if (!exclude.has(replica) && replica.isUsable()) return true;
    }
    return !exclude.has(this.primary) && this.primary.isUsable() && this.primaryTakesReads(exclude);
  }

  /**
   * A replica chosen by the balancer among those passing `accept`; undefined when none does.
   * Replicas ejected as outliers are chosen only in panic routing.
   */
  pickReplica(accept: (endpoint: Endpoint) => boolean): Endpoint | undefined {
    const replicas = this.replicas;
    if (replicas.length === 0) return undefined;
    if (this.outliers === undefined || this.outliers.ejectedCount === 0) {
      return this.balancer.pick(replicas, accept, null);
    }
    this.accepting = accept;
    let replica: Endpoint | undefined;
    try {
      replica = this.balancer.pick(replicas, this.acceptedAndRoutable, null);
    } finally {
      this.accepting = undefined;
    }
    if (replica === undefined && this.isPanicking()) replica = this.balancer.pick(replicas, accept);
    return replica;
  }

  /** All endpoints, primary first. */
  get all(): readonly Endpoint[] {
    return [this.primary, ...this.replicas];
  }

  /**
   * One sweep of the pool's housekeeping (after the endpoints' generations moved on): outlier
   * ejection decides, slow-start ramps move, and each endpoint whose routing state changed is
   * reported. `now`: the wall clock, in ms.
   */
  sweep(now: number): void {
    this.outliers?.tick(isOtherwiseRoutable);
    this.slowStart?.update(now, (endpoint) => this.inOutage(endpoint));
    if (this.onChange === undefined) return;
    const all = this.all;
    for (let i = 0; i < all.length; i++) {
      const endpoint = all[i]!;
      const state = this.routingState(endpoint);
      const previous = this.states[i]!;
      if (state === previous) continue;
      this.states[i] = state;
      this.onChange({ endpoint: endpoint.name, state, previous, reason: this.reasonFor(endpoint) });
    }
  }

  /** Where `endpoint` stands in read routing now. */
  routingState(endpoint: Endpoint): RoutingState {
    if (endpoint.role === 'primary') return isOtherwiseRoutable(endpoint) ? 'routed' : 'ejected';
    if (this.isOutlier(endpoint)) return this.isPanicking() ? 'panic' : 'ejected';
    if (!isOtherwiseRoutable(endpoint)) return 'ejected';
    return shareOf(endpoint) < 1 ? 'slow-start' : 'routed';
  }

  /** Why `endpoint` is out of routing (or in panic), or null when it is routed. */
  reasonFor(endpoint: Endpoint): string | null {
    const outlier = this.outliers?.reasonFor(endpoint) ?? null;
    if (outlier !== null) return outlier;
    if (endpoint.isDown) return `declared down${prefixed(endpoint.health.reason)}`;
    if (endpoint.breakerState !== 'closed') return `circuit ${endpoint.breakerState}`;
    if (endpoint.role === 'replica' && !healthAllowsReads(endpoint)) {
      return endpoint.health.reason ?? endpoint.health.state;
    }
    return null;
  }

  /** Times `endpoint` was ejected as an outlier. */
  outlierEjections(endpoint: Endpoint): number {
    return this.outliers?.ejectionsOf(endpoint) ?? 0;
  }

  /** Its share of reads (slow start), 1 outside a ramp. */
  shareOf(endpoint: Endpoint): number {
    return shareOf(endpoint);
  }

  /**
   * The healthy replica outside `exclude` with the least in flight and queued, or undefined when
   * none is. Healthy: in routing but for its queue (up, circuit closed, allowed by the health
   * monitor) and not ejected as an outlier (a replica out only as an outlier takes reads in panic
   * routing, before this is asked). A plain scan, not the balancer: it runs only once no replica
   * can admit the read, and a refusal should not use up a balancer's turn.
   */
  private leastLoadedHealthy(exclude: ReadonlySet<Endpoint> | null): Endpoint | undefined {
    let best: Endpoint | undefined;
    let bestLoad = 0;
    for (const replica of this.replicas) {
      if (exclude?.has(replica) || !isOtherwiseRoutable(replica) || this.isOutlier(replica)) {
        continue;
      }
      const load = replica.load();
      if (best === undefined || load < bestLoad) {
        best = replica;
        bestLoad = load;
      }
    }
    return best;
  }

  private isOutlier(endpoint: Endpoint): boolean {
    const outliers = this.outliers;
    return outliers !== undefined && outliers.ejectedCount !== 0 && outliers.isEjected(endpoint);
  }

  /**
   * Panic: some replica is ejected as an outlier, and no replica is both usable and not ejected.
   * Asked only when the balancer found no routable replica, so never on the common path.
   */
  private isPanicking(): boolean {
    const outliers = this.outliers;
    if (outliers === undefined || outliers.ejectedCount === 0) return false;
    let outlierUsable = false;
    for (const replica of this.replicas) {
      if (!replica.isUsable()) continue;
      if (!outliers.isEjected(replica)) return false;
      outlierUsable = true;
    }
    return outlierUsable;
  }

  /** Out of routing because something went wrong with it (lag is not an outage). */
  private inOutage(endpoint: Endpoint): boolean {
    return (
      endpoint.isDown ||
      endpoint.breakerState !== 'closed' ||
      endpoint.health.state === 'ejected' ||
      this.isOutlier(endpoint)
    );
  }
}

/** The health monitor lets reads go to the replica (not ejected by a probe, not lagging). */
function healthAllowsReads(endpoint: Endpoint): boolean {
  const state = endpoint.health.state;
  return state !== 'ejected' && state !== 'lagging';
}

/**
 * In routing but for outlier ejection and momentary saturation: up, circuit closed, allowed by
 * the health monitor. (A full queue is a moment, not a state worth reporting.)
 */
function isOtherwiseRoutable(endpoint: Endpoint): boolean {
  return (
    !endpoint.isDown &&
    endpoint.breakerState === 'closed' &&
    (endpoint.role === 'primary' || healthAllowsReads(endpoint))
  );
}

function prefixed(reason: string | null): string {
  return reason === null ? '' : `: ${reason}`;
}
