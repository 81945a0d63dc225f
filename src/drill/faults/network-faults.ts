/**
 * Faults on the network path, made by the ChaosProxy in front of each node and of Redis: a black
 * hole (every byte swallowed, nothing refused), a reset of every open connection, a Redis that
 * goes away or hangs. They work against external servers too.
 */
import type { ChaosProxy } from '../../testing/index.js';
import { pick } from '../rng.js';
import { currentPrimary, type DrillTargets, standbys } from '../targets.js';
import { type PlannedFault, secondsOf } from './fault.js';

export function networkBlackhole(targets: DrillTargets, rng: () => number, holdMs: number) {
  const replicas = standbys(targets);
  const node = replicas.length > 0 ? pick(rng, replicas) : currentPrimary(targets);
  return {
    name: 'network-blackhole',
    target: node.name,
    endpoint: replicas.length > 0 ? node.name : 'primary',
    description: `black-hole the network path to ${node.name} for ${secondsOf(holdMs)}`,
    inject: async () => {
      node.proxy.blackhole();
    },
    heal: async () => {
      node.proxy.heal();
    },
  } satisfies PlannedFault;
}

/**
 * Every open connection to every node gets an RST at once, as when a load balancer or a NAT
 * table in the path restarts. New connections work straight away.
 */
export function connectionReset(targets: DrillTargets) {
  return {
    name: 'connection-reset',
    target: 'every node',
    endpoint: 'primary',
    description: 'RST every open connection to every node (ChaosProxy.reset())',
    instant: true,
    inject: async (context) => {
      const reset = targets.nodes.reduce((n, node) => n + node.proxy.reset(), 0);
      context.say(`connection-reset: ${reset} connections reset`);
    },
    heal: async () => {},
  } satisfies PlannedFault;
}

/** Redis goes away: open connections are reset, new ones refused, until the heal. */
export function redisLoss(proxy: ChaosProxy | undefined, holdMs: number) {
  if (proxy === undefined) return undefined;
  return {
    name: 'redis-loss',
    target: 'redis',
    endpoint: 'redis',
    description: `Redis unreachable for ${secondsOf(holdMs)}: open connections reset, new ones refused`,
    inject: async () => {
      proxy.refuse();
      proxy.reset();
    },
    heal: async () => {
      proxy.heal();
    },
  } satisfies PlannedFault;
}

/** Redis hangs: every byte swallowed, nothing refused or closed, as a SIGSTOPped server does. */
export function redisHang(proxy: ChaosProxy | undefined, holdMs: number) {
  if (proxy === undefined) return undefined;
  return {
    name: 'redis-hang',
    target: 'redis',
    endpoint: 'redis',
    description: `black-hole the network path to Redis for ${secondsOf(holdMs)}`,
    inject: async () => {
      proxy.blackhole();
    },
    heal: async () => {
      proxy.heal();
    },
  } satisfies PlannedFault;
}
