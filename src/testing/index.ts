/**
 * The testing kit: a local PostgreSQL cluster, a fault-injecting TCP proxy and a fault-injecting
 * pool wrapper. It knows nothing of the drill, which is built on it; the `resilient-pool/testing`
 * subpath serves both (src/drill/testing-subpath.ts).
 */
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
