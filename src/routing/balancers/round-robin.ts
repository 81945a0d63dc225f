import { type Balancer, type BalancerTarget, isEligible } from './balancer.js';

/**
 * Each usable target in turn. The cursor is a position in the target list, not a position among
 * the usable ones, so a target that drops out is simply stepped over and, when it comes back,
 * resumes its place in the cycle without shifting anyone else's turn.
 */
export class RoundRobinBalancer<T extends BalancerTarget> implements Balancer<T> {
  /** Index of the first target to consider on the next pick. */
  #cursor = 0;

  pick(
    targets: readonly T[],
    isUsable: (t: T) => boolean,
    exclude?: ReadonlySet<T> | null,
  ): T | undefined {
    const n = targets.length;
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
