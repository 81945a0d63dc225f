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
  /**
   * Slow start's multiplier of the target's share of picks, in (0, 1] (slow-start.ts); absent or
   * 1 outside a ramp, which every strategy treats exactly as before slow start existed.
   */
  readonly share?: number;
}

/**
 * How replicas share reads:
 * - `'round-robin'`: each usable target in turn;
 * - `'random'`: uniformly at random among usable targets;
 * - `'least-busy'`: the target with the smallest `load()`, ties taken in turn;
 * - `'weighted'`: smooth weighted round-robin by `weight` (nginx's algorithm).
 *
 * A target slow-starting (`share` below 1) gets picked in proportion to its share, relative to
 * the others: 'weighted' multiplies its weight by the share, 'random' draws with the share as its
 * weight, 'round-robin' and 'least-busy' pick by smooth weighted round-robin while a ramp lasts
 * (see {@link SmoothShares}). With every share at 1 each strategy picks exactly as it always has.
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

/** Whether some target of the list is slow-starting (a field read per target: no call). */
export function anyRamping(targets: readonly BalancerTarget[]): boolean {
  for (let i = 0; i < targets.length; i++) {
    // `undefined < 1` is false: a target without a share is not ramping.
    if ((targets[i]!.share as number) < 1) return true;
  }
  return false;
}

/** `SmoothShares.pick`: no usable target is slow-starting; the strategy picks as usual. */
export const NO_RAMP = -2;

/**
 * How the strategies without weights ('round-robin', 'least-busy') honour slow start: while a
 * usable target is ramping they pick by smooth weighted round-robin (nginx's, as 'weighted' does)
 * over an effective weight per target, so that each target's picks are in proportion to it, with
 * no random draw (the sequences stay exact in tests). Credits start from zero at each ramp and
 * are not used outside one. Kept in an array parallel to the target list.
 */
export class SmoothShares {
  #credit: number[] = [];
  #inRamp = false;

  /**
   * The index of the target to pick, -1 when none is usable, or NO_RAMP when no usable target is
   * ramping (the caller then picks as usual; credits are dropped). `weightOf` must be a function
   * made once (no closure per pick), positive for a usable target.
   */
  pick<T extends BalancerTarget>(
    targets: readonly T[],
    isUsable: (t: T) => boolean,
    exclude: ReadonlySet<T> | null | undefined,
    weightOf: (t: T) => number,
  ): number {
    const n = targets.length;
    if (!this.#inRamp || this.#credit.length !== n) this.#credit = new Array<number>(n).fill(0);
    const credit = this.#credit;
    let best = -1;
    let total = 0;
    let ramping = false;
    for (let i = 0; i < n; i++) {
      const target = targets[i]!;
      if (!isEligible(target, isUsable, exclude)) continue;
      if ((target.share as number) < 1) ramping = true;
      const weight = weightOf(target);
      total += weight;
      const c = credit[i]! + weight;
      credit[i] = c;
      if (best < 0 || c > credit[best]!) best = i;
    }
    if (!ramping) {
      // The ramping targets are all out of reach: forget the credits, pick as usual.
      this.#inRamp = false;
      return best < 0 ? -1 : NO_RAMP;
    }
    this.#inRamp = true;
    credit[best]! -= total;
    return best;
  }

  /** A pick made as usual (no target ramping): the next ramp starts from clean credits. */
  leave(): void {
    this.#inRamp = false;
  }
}
