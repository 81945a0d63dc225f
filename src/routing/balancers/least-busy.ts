import {
  type Balancer,
  type BalancerTarget,
  isEligible,
  NO_RAMP,
  SmoothShares,
} from './balancer.js';

/**
 * While a target slow-starts, least-busy weighs each target by its share over its load (Envoy's
 * least-request weights, `weight / (active + 1)`): an idle ramping target still gets its share,
 * and a busy one gets less.
 */
const byShareOverLoad = (t: BalancerTarget): number => (t.share ?? 1) / (t.load() + 1);

/**
 * The usable target with the smallest `load()`. The scan starts just after the previous pick and
 * keeps the first minimum it meets, so among equally loaded targets the choice rotates like
 * round-robin instead of always landing on the first (which would pile every call of an idle
 * moment onto one replica).
 *
 * While a usable target is slow-starting, picks follow smooth weighted round-robin over
 * `share / (load + 1)` instead: taking the strict minimum would never pick a ramping target at
 * idle (every load 0, the full-share targets always ahead), and scaling only its load would give
 * it nothing until the others were busy.
 */
export class LeastBusyBalancer<T extends BalancerTarget> implements Balancer<T> {
  #cursor = 0;
  readonly #shares = new SmoothShares();

  pick(
    targets: readonly T[],
    isUsable: (t: T) => boolean,
    exclude?: ReadonlySet<T> | null,
  ): T | undefined {
    const n = targets.length;
    let index = this.#cursor < n ? this.#cursor : 0;
    let best = -1;
    let bestLoad = 0;
    // Noticed in the same scan, so that outside a ramp slow start costs one comparison a target.
    let ramping = false;
    for (let tried = 0; tried < n; tried++) {
      const target = targets[index]!;
      if (isEligible(target, isUsable, exclude)) {
        // `undefined < 1` is false: a target without a share is not ramping.
        if ((target.share as number) < 1) ramping = true;
        const load = target.load();
        if (best < 0 || load < bestLoad) {
          best = index;
          bestLoad = load;
        }
      }
      index = index + 1 === n ? 0 : index + 1;
    }
    if (ramping) {
      const picked = this.#shares.pick(targets, isUsable, exclude, byShareOverLoad);
      // NO_RAMP here only if isUsable changed its answer between the passes: the scan stands.
      if (picked !== NO_RAMP) best = picked;
    } else {
      this.#shares.leave();
    }
    if (best < 0) return undefined;
    this.#cursor = best + 1 === n ? 0 : best + 1;
    return targets[best];
  }
}
