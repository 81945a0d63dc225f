export type {
  DrillReport,
  DrillSample,
  FaultSummary,
  FaultWindow,
  InvariantResult,
} from '../cli/drill/report-model.js';
export type { DrillOptions } from '../cli/drill/run-drill.js';
export { runDrill } from '../cli/drill/run-drill.js';
export type { ScenarioName } from '../cli/drill/scenario-names.js';
export { SCENARIOS } from '../cli/drill/scenario-names.js';
export type { ChaosProxyOptions, ChaosProxyStats } from './chaos-proxy.js';
export { ChaosProxy } from './chaos-proxy.js';
export type { ClusterNode, LocalCluster, LocalClusterOptions } from './cluster.js';
export { startLocalCluster } from './cluster.js';
export type { NodeRole } from './cluster-node.js';
export type {
  FaultError,
  FaultInjectorOperationStats,
  FaultInjectorStats,
  FaultOperation,
  FaultTimes,
  QueryFaultOptions,
} from './fault-injector.js';
export { FaultInjector } from './fault-injector.js';
export type { LocalClusterHandle, SuiteHooks } from './use-local-cluster.js';
export { useLocalCluster } from './use-local-cluster.js';
