import { type Balancer, type BalancerTarget, isEligible } from './balancer.js';

/**
 * The usable target with the smallest `load()`. The scan starts just after the previous pick and
 * keeps the first minimum it meets, so among equally loaded targets the choice rotates like
 * round-robin instead of always landing on the first (which would pile every call of an idle
 * moment onto one replica).
 */
export class LeastBusyBalancer<T extends BalancerTarget> implements Balancer<T> {
  #cursor = 0;

  pick(
    targets: readonly T[],
    isUsable: (t: T) => boolean,
    exclude?: ReadonlySet<T> | null,
  ): T | undefined {
    const n = targets.length;
    let index = this.#cursor < n ? this.#cursor : 0;
    let best = -1;
    let bestLoad = 0;
    for (let tried = 0; tried < n; tried++) {
      const target = targets[index]!;
      if (isEligible(target, isUsable, exclude)) {
        const load = target.load();
        if (best < 0 || load < bestLoad) {
          best = index;
          bestLoad = load;
        }
      }
      index = index + 1 === n ? 0 : index + 1;
    }
    if (best < 0) return undefined;
    this.#cursor = best + 1 === n ? 0 : best + 1;
    return targets[best];
  }
}
