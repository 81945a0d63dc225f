/**
 * The two ways a standby becomes the primary: a planned switchover (the primary is stopped
 * cleanly, so every standby has all its WAL) and a failover (the primary is killed). Both are
 * final: the old primary cannot rejoin without pg_rewind, which the embedded binaries lack.
 * Nothing is re-pointed for the pool: it lists every node as a primary candidate and finds the
 * promoted one itself (primary discovery).
 */
import type { ClusterNode, LocalCluster } from '../../testing/index.js';
import { currentPrimary, type DrillTargets } from '../targets.js';
import { type FaultContext, type PlannedFault, withClient } from './fault.js';

/** The standby that has received the most WAL: promoting it loses no acknowledged write. */
async function mostAdvanced(
  targets: DrillTargets,
  replicas: readonly ClusterNode[],
): Promise<number> {
  let best = -1;
  let bestLsn = -1n;
  for (const [i, replica] of replicas.entries()) {
    if (!replica.isRunning()) continue;
    const node = targets.nodes.find((n) => n.server === replica);
    if (node === undefined) continue;
    try {
      const lsn = await withClient(targets.directConnection(node), async (c) => {
        const { rows } = await c.query<{ lsn: string | null }>(
          "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::text AS lsn",
        );
        return BigInt(rows[0]?.lsn?.split('.')[0] ?? '-1');
      });
      if (lsn > bestLsn) {
        bestLsn = lsn;
        best = i;
      }
    } catch {
      // A replica that does not answer cannot be promoted.
    }
  }
  if (best < 0) throw new Error('promotion: no running replica to promote');
  return best;
}

/**
 * With no standby left to confirm commits, quorum commit would hold every write forever: the
 * requirement is dropped, as Patroni does in its (non-strict) synchronous mode.
 */
async function relaxQuorumIfAlone(
  targets: DrillTargets,
  cluster: LocalCluster,
  promoted: ClusterNode,
  context: FaultContext,
): Promise<void> {
  if (cluster.replicas.some((r) => r.isRunning())) return;
  const node = targets.nodes.find((n) => n.server === promoted);
  if (node === undefined) return;
  await withClient(targets.directConnection(node), async (c) => {
    await c.query("ALTER SYSTEM SET synchronous_standby_names = ''");
    await c.query('SELECT pg_reload_conf()');
  });
  context.say(`no standby left behind ${node.name}: synchronous commit requirement dropped`);
}

function promotion(
  name: 'planned-switchover' | 'primary-failover',
  targets: DrillTargets,
  description: string,
  takeDown: (old: ClusterNode) => Promise<void>,
): PlannedFault | undefined {
  const cluster = targets.cluster;
  if (cluster === undefined || !cluster.replicas.some((r) => r.isRunning())) return undefined;
  const old = currentPrimary(targets);
  return {
    name,
    target: old.name,
    endpoint: 'primary',
    description,
    inject: async (context) => {
      await takeDown(cluster.primary);
      context.markDown();
      const index = await mostAdvanced(targets, cluster.replicas);
      const promoted = await cluster.promote(index);
      context.markPromoted();
      const node = targets.nodes.find((n) => n.server === promoted);
      context.say(`${name}: ${node?.name ?? promoted.name} promoted`);
      await relaxQuorumIfAlone(targets, cluster, promoted, context);
    },
    heal: async () => {},
    // The old primary's replica endpoint, if it had one (a replica promoted earlier), is gone.
    retired: () => (targets.replicas.includes(old) ? [old.name] : []),
  };
}

export function plannedSwitchover(targets: DrillTargets) {
  const old = currentPrimary(targets);
  return promotion(
    'planned-switchover',
    targets,
    `clean stop of the primary (${old.name}), promote the most advanced standby`,
    (server) => server.stop(),
  );
}

export function primaryFailover(targets: DrillTargets) {
  const old = currentPrimary(targets);
  return promotion(
    'primary-failover',
    targets,
    `SIGKILL the primary (${old.name}) and promote the most advanced standby; the pool finds it among its primary candidates`,
    (server) => server.kill(),
  );
}
