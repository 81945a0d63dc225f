/**
 * The faults. Each scenario injects a real fault (a signal to a server process, superuser SQL, a
 * promotion, a network fault in a ChaosProxy, an open-loop burst) and heals it; the drill
 * measures what callers saw. The faults themselves are in faults/, by family.
 */
import type { PlannedFault } from './faults/fault.js';
import {
  connectionReset,
  networkBlackhole,
  redisHang,
  redisLoss,
} from './faults/network-faults.js';
import { overload } from './faults/overload-fault.js';
import { primaryHang, primaryRestart, replicaHang, replicaKill } from './faults/process-faults.js';
import { plannedSwitchover, primaryFailover } from './faults/promotions.js';
import { backendsTerminated, replicaLag, tooManyConnections } from './faults/sql-faults.js';
import type { ScenarioName } from './scenario-names.js';
import type { DrillTargets } from './targets.js';
import type { CallSink } from './workload.js';

export type { FaultContext, PlannedFault } from './faults/fault.js';

export interface PlanContext {
  targets: DrillTargets;
  /** The schedule's random sequence: which node is hit. */
  rng: () => number;
  /** How long the fault is held, ms. */
  holdMs: number;
  /** Where the overload burst reports its calls. */
  sink: CallSink;
}

/** The fault `name` would play now, or undefined when no node is left that it can hit. */
export function planFault(name: ScenarioName, plan: PlanContext): PlannedFault | undefined {
  const { targets, rng, holdMs } = plan;
  switch (name) {
    case 'replica-kill':
      return replicaKill(targets, rng, holdMs);
    case 'replica-hang':
      return replicaHang(targets, rng, holdMs);
    case 'replica-lag':
      return replicaLag(targets, rng, holdMs);
    case 'network-blackhole':
      return networkBlackhole(targets, rng, holdMs);
    case 'connection-reset':
      return connectionReset(targets);
    case 'backends-terminated':
      return backendsTerminated(targets);
    case 'too-many-connections':
      return tooManyConnections(targets);
    case 'primary-hang':
      return primaryHang(targets, holdMs);
    case 'primary-restart':
      return primaryRestart(targets, holdMs);
    case 'overload':
      return overload(targets, plan.sink, holdMs);
    case 'redis-loss':
      return redisLoss(targets.redisProxy, holdMs);
    case 'redis-hang':
      return redisHang(targets.redisProxy, holdMs);
    case 'planned-switchover':
      return plannedSwitchover(targets);
    case 'primary-failover':
      return primaryFailover(targets);
  }
}
