/**
 * Faults made with the server processes of the local cluster: a crash (SIGKILL), a freeze
 * (SIGSTOP of the postmaster and its backends), a restart (fast shutdown, start again).
 */
import { pick } from '../rng.js';
import { currentPrimary, type DrillTargets, standbys } from '../targets.js';
import { type PlannedFault, secondsOf, serverOf } from './fault.js';

export function replicaKill(targets: DrillTargets, rng: () => number, holdMs: number) {
  const replicas = standbys(targets);
  if (replicas.length === 0) return undefined;
  const node = pick(rng, replicas);
  return {
    name: 'replica-kill',
    target: node.name,
    endpoint: node.name,
    description: `SIGKILL ${node.name}, restart after ${secondsOf(holdMs)}`,
    inject: () => serverOf(node).kill(),
    heal: () => serverOf(node).start(),
  } satisfies PlannedFault;
}

export function replicaHang(targets: DrillTargets, rng: () => number, holdMs: number) {
  const replicas = standbys(targets);
  if (replicas.length === 0) return undefined;
  const node = pick(rng, replicas);
  return {
    name: 'replica-hang',
    target: node.name,
    endpoint: node.name,
    description: `SIGSTOP ${node.name} and its backends for ${secondsOf(holdMs)}`,
    inject: async () => serverOf(node).pause(),
    heal: async () => serverOf(node).resume(),
  } satisfies PlannedFault;
}

export function primaryHang(targets: DrillTargets, holdMs: number) {
  const node = currentPrimary(targets);
  return {
    name: 'primary-hang',
    target: node.name,
    endpoint: 'primary',
    description: `SIGSTOP the primary (${node.name}) and its backends for ${secondsOf(holdMs)}`,
    inject: async () => serverOf(node).pause(),
    heal: async () => serverOf(node).resume(),
  } satisfies PlannedFault;
}

/**
 * The primary restarts while the pools hold idle clients: a fast shutdown ends every session
 * (57P01 on running statements, an 'error' on idle clients), and the pools must replace the dead
 * clients instead of handing them out once it is back.
 */
export function primaryRestart(targets: DrillTargets, holdMs: number) {
  const node = currentPrimary(targets);
  return {
    name: 'primary-restart',
    target: node.name,
    endpoint: 'primary',
    description: `fast shutdown of the primary (${node.name}), start it again after ${secondsOf(holdMs)}`,
    inject: () => serverOf(node).stop(),
    heal: () => serverOf(node).start(),
  } satisfies PlannedFault;
}
