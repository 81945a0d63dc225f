/**
 * Replica selection strategies. The router owns the list of endpoints and the health checks; a
 * balancer only chooses among the targets the router says are usable, so a new strategy is a new
 * file under `balancers/`, never an edit of the router.
 *
 * `pick` runs on every routed call: implementations keep their state in numbers and arrays sized
 * once, and allocate nothing while the target list keeps its length.
 */
import { LeastBusyBalancer } from './balancers/least-busy.js';
import { RandomBalancer } from './balancers/random.js';
import { RoundRobinBalancer } from './balancers/round-robin.js';
import { WeightedBalancer } from './balancers/weighted.js';

/**
 * What a balancer needs to know of a replica endpoint. Implemented by the Endpoint class elsewhere.
 */
export interface BalancerTarget {
  /** Relative share for 'weighted' (positive integer, validated with the options). @default 1 */
  readonly weight: number;
  /** Calls in flight plus calls queued at this endpoint, for 'least-busy'. */
  load(): number;
}

/**
 * How replicas share reads:
 * - `'round-robin'`: each usable target in turn;
 * - `'random'`: uniformly at random among usable targets;
 * - `'least-busy'`: the target with the smallest `load()`, ties taken in turn;
 * - `'weighted'`: smooth weighted round-robin by `weight` (nginx's algorithm).
 */
export type BalancerKind = 'round-robin' | 'random' | 'least-busy' | 'weighted';

/**
 * A selection strategy. An instance keeps state (a cursor, credits) between picks, so use one
 * instance per target list, and pass the same list (the same array, in the same order) each
 * time, excluding targets through `isUsable`/`exclude` rather than by building a new array.
 */
export interface Balancer<T extends BalancerTarget> {
  /**
   * Picks one of `targets` for which `isUsable(t)` is true and that is not in `exclude`;
   * undefined when none. Must not allocate on the common path. `isUsable` may be called more
   * than once per target and per pick, so it should be a cheap, side-effect-free check.
   */
  pick(
    targets: readonly T[],
    isUsable: (t: T) => boolean,
    exclude?: ReadonlySet<T> | null,
  ): T | undefined;
}

/**
 * Creates the balancer for `kind`.
 *
 * @param random source of uniform numbers in [0, 1) for `'random'`; inject a seeded one in tests.
 * @default random Math.random
 * @example
 * const balancer = createBalancer<Endpoint>('least-busy');
 * const endpoint = balancer.pick(replicas, (e) => e.isHealthy(), triedAlready);
 */
export function createBalancer<T extends BalancerTarget>(
  kind: BalancerKind,
  random: () => number = Math.random,
): Balancer<T> {
  switch (kind) {
    case 'round-robin':
      return new RoundRobinBalancer<T>();
    case 'random':
      return new RandomBalancer<T>(random);
    case 'least-busy':
      return new LeastBusyBalancer<T>();
    case 'weighted':
      return new WeightedBalancer<T>();
    default: {
      // Options validation rejects unknown kinds before this point; this guards JavaScript
      // callers that construct a balancer directly.
      const unknownKind: never = kind;
      throw new TypeError(`Unknown balancer kind: ${String(unknownKind)}`);
    }
  }
}

/** True when `t` may be picked: usable and not excluded. Shared by every strategy. */
export function isEligible<T>(
  t: T,
  isUsable: (t: T) => boolean,
  exclude: ReadonlySet<T> | null | undefined,
): boolean {
  return (exclude == null || !exclude.has(t)) && isUsable(t);
}
