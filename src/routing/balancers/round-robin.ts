import {
  anyRamping,
  type Balancer,
  type BalancerTarget,
  isEligible,
  NO_RAMP,
  SmoothShares,
} from './balancer.js';

/** While a target slow-starts, round-robin weighs each target by its share alone. */
const byShare = (t: BalancerTarget): number => t.share ?? 1;

/**
 * Each usable target in turn. The cursor is a position in the target list, not a position among
 * the usable ones, so a target that drops out is simply stepped over and, when it comes back,
 * resumes its place in the cycle without shifting anyone else's turn.
 *
 * While a usable target is slow-starting, turns are dealt by smooth weighted round-robin over the
 * shares (a target at share 0.5 gets one turn for every two of a target at 1); the cycle resumes
 * after the last target so picked once the ramp ends.
 */
export class RoundRobinBalancer<T extends BalancerTarget> implements Balancer<T> {
  /** Index of the first target to consider on the next pick. */
  #cursor = 0;
  readonly #shares = new SmoothShares();

  pick(
    targets: readonly T[],
    isUsable: (t: T) => boolean,
    exclude?: ReadonlySet<T> | null,
  ): T | undefined {
    const n = targets.length;
    if (anyRamping(targets)) {
      const picked = this.#shares.pick(targets, isUsable, exclude, byShare);
      if (picked !== NO_RAMP) {
        if (picked < 0) return undefined;
        this.#cursor = picked + 1 === n ? 0 : picked + 1;
        return targets[picked];
      }
    } else {
      this.#shares.leave();
    }
    // The list may have shrunk since the last pick.
    let index = this.#cursor < n ? this.#cursor : 0;
    for (let tried = 0; tried < n; tried++) {
      const target = targets[index]!;
      const following = index + 1 === n ? 0 : index + 1;
      if (isEligible(target, isUsable, exclude)) {
        this.#cursor = following;
        return target;
      }
      index = following;
    }
    return undefined;
  }
}
