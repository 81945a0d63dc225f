/** The balancer for a `routing.balancer` kind: the one place that knows every strategy. */
import type { Balancer, BalancerKind, BalancerTarget } from './balancer.js';
import { LeastBusyBalancer } from './least-busy.js';
import { RandomBalancer } from './random.js';
import { RoundRobinBalancer } from './round-robin.js';
import { WeightedBalancer } from './weighted.js';

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
