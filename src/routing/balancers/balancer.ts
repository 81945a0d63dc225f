/**
 * Replica selection strategies. The router owns the list of endpoints and the health checks; a
 * balancer only chooses among the targets the router says are usable, so a new strategy is a new
 * file beside this one, never an edit of the router.
 *
 * `pick` runs on every routed call: implementations keep their state in numbers and arrays sized
 * once, and allocate nothing while the target list keeps its length.
 */

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

/** True when `t` may be picked: usable and not excluded. Shared by every strategy. */
export function isEligible<T>(
  t: T,
  isUsable: (t: T) => boolean,
  exclude: ReadonlySet<T> | null | undefined,
): boolean {
  return (exclude == null || !exclude.has(t)) && isUsable(t);
}
