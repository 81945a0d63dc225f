import { type Balancer, type BalancerTarget, isEligible } from './balancer.js';

/**
 * Uniform choice among the usable targets: count them, draw k, walk to the k-th. Two passes over
 * a handful of targets cost less than building a filtered array, and exactly one random number
 * is drawn per pick, which keeps a seeded source's sequence easy to reason about in tests.
 *
 * While some usable target is slow-starting the draw is weighted by the shares instead (a target
 * at share 0.5 is half as likely as one at 1), still with one random number.
 */
export class RandomBalancer<T extends BalancerTarget> implements Balancer<T> {
  readonly #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  pick(
    targets: readonly T[],
    isUsable: (t: T) => boolean,
    exclude?: ReadonlySet<T> | null,
  ): T | undefined {
    const n = targets.length;
    let usable = 0;
    let shares = 0;
    for (let i = 0; i < n; i++) {
      const target = targets[i]!;
      if (isEligible(target, isUsable, exclude)) {
        usable++;
        shares += target.share ?? 1;
      }
    }
    if (usable === 0) return undefined;
    if (shares !== usable) return this.#weighted(targets, isUsable, exclude, shares);
    let k = Math.floor(this.#random() * usable);
    // A source that returns 1 (or anything out of range) must not pick past the end.
    if (!(k >= 0 && k < usable)) k = usable - 1;
    let last: T | undefined;
    for (let i = 0; i < n; i++) {
      const target = targets[i]!;
      if (!isEligible(target, isUsable, exclude)) continue;
      if (k === 0) return target;
      k--;
      last = target;
    }
    // Only reached if isUsable changed its answer between the two passes.
    return last;
  }

  /** A draw weighted by the shares, which sum to `total`. */
  #weighted(
    targets: readonly T[],
    isUsable: (t: T) => boolean,
    exclude: ReadonlySet<T> | null | undefined,
    total: number,
  ): T | undefined {
    let point = this.#random() * total;
    let last: T | undefined;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      if (!isEligible(target, isUsable, exclude)) continue;
      const share = target.share ?? 1;
      if (point < share) return target;
      point -= share;
      last = target;
    }
    // A source returning 1 (or rounding at the end of the walk) lands past the last share.
    return last;
  }
}
