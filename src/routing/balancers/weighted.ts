import { type Balancer, type BalancerTarget, isEligible } from './balancer.js';

/**
 * Smooth weighted round-robin (nginx): every pick adds each usable target's weight to its credit,
 * takes the target with the most credit and charges it the total weight. Weights [5, 1, 1] give
 * a a b a c a a, spreading the light targets through the cycle instead of bunching the heavy
 * one, and the sequence is deterministic.
 *
 * Credits live in an array parallel to the target list (faster than a WeakMap lookup per target
 * per pick); it is reset when the list changes length. Unusable and excluded targets are skipped
 * entirely, so they gain no credit while out and cannot return with a burst owed to them.
 *
 * A slow-starting target's weight is multiplied by its share (Envoy's slow start for weighted
 * round-robin), so its credit grows more slowly until the ramp ends.
 */
export class WeightedBalancer<T extends BalancerTarget> implements Balancer<T> {
  #credit: number[] = [];

  pick(
    targets: readonly T[],
    isUsable: (t: T) => boolean,
    exclude?: ReadonlySet<T> | null,
  ): T | undefined {
    const n = targets.length;
    if (this.#credit.length !== n) this.#credit = new Array<number>(n).fill(0);
    const credit = this.#credit;
    let best = -1;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const target = targets[i]!;
      if (!isEligible(target, isUsable, exclude)) continue;
      // Slow start scales the weight; outside a ramp this is the weight itself.
      const weight = target.weight * (target.share ?? 1);
      total += weight;
      const c = credit[i]! + weight;
      credit[i] = c;
      // Strictly greater: ties go to the earlier target, as in nginx.
      if (best < 0 || c > credit[best]!) best = i;
    }
    if (best < 0) return undefined;
    credit[best]! -= total;
    return targets[best];
  }
}
