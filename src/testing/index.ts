export type { ClusterNode, LocalCluster, LocalClusterOptions } from './cluster.js';
export { startLocalCluster } from './cluster.js';
