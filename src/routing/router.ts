/**
 * Which endpoint serves a call: reads to a usable replica chosen by the balancer, then the primary
 * as fallback; writes to the primary. Health comes from each endpoint (circuit, queue).
 */
import type { Endpoint } from '../endpoint/endpoint.js';
import type { Balancer } from './balancers/balancer.js';

const isUsable = (endpoint: Endpoint): boolean => endpoint.isUsable();

export class Router {
  constructor(
    readonly primary: Endpoint,
    readonly replicas: readonly Endpoint[],
    private readonly balancer: Balancer<Endpoint>,
    private readonly fallbackToPrimary: boolean,
  ) {}

  /**
   * The endpoint for a read, avoiding `exclude` (endpoints that already failed this call) while
   * another choice exists. Undefined when no replica is usable and fallback is off. With no
   * replicas configured at all the primary serves reads.
   */
  forRead(exclude: ReadonlySet<Endpoint> | null): Endpoint | undefined {
    const replicas = this.replicas;
    if (replicas.length === 0) return this.primary;
    const replica = this.balancer.pick(replicas, isUsable, exclude);
    if (replica !== undefined) return replica;
    if (this.fallbackToPrimary) return this.primary;
    // Without fallback, a replica that failed this call is still better than none.
    return exclude === null ? undefined : this.balancer.pick(replicas, isUsable, null);
  }

  /**
   * Whether a read could go somewhere other than the endpoints in `exclude`. Asks the endpoints
   * directly rather than the balancer, so that checking does not use up a balancer's turn.
   */
  hasReadAlternative(exclude: ReadonlySet<Endpoint>): boolean {
    for (const replica of this.replicas) {
      if (!exclude.has(replica) && replica.isUsable()) return true;
    }
    const primaryServesReads = this.replicas.length === 0 || this.fallbackToPrimary;
    return primaryServesReads && !exclude.has(this.primary) && this.primary.isUsable();
  }

  /** A replica chosen by the balancer among those passing `accept`; undefined when none does. */
  pickReplica(accept: (endpoint: Endpoint) => boolean): Endpoint | undefined {
    return this.replicas.length === 0 ? undefined : this.balancer.pick(this.replicas, accept, null);
  }

  /** All endpoints, primary first. */
  get all(): readonly Endpoint[] {
    return [this.primary, ...this.replicas];
  }
}
