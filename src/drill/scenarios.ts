/**
 * The faults. Each scenario injects a real fault (a signal to a server process, a promotion, a
 * network black hole in a ChaosProxy) and heals it; the drill measures what callers saw.
 */
import pg from 'pg';
import type { ClusterNode } from '../testing/index.js';
import { pick } from './rng.js';
import type { ScenarioName } from './scenario-names.js';
import type { DrillNode, DrillTargets } from './targets.js';

export interface PlannedFault {
  name: ScenarioName;
  /** Endpoint hit, e.g. 'replica-1'. */
  target: string;
  description: string;
  inject(): Promise<void>;
  /** Undoes the fault; a no-op for the failover, which is final. */
  heal(): Promise<void>;
}

const PROCESS_FAULTS: ReadonlySet<ScenarioName> = new Set(['replica-kill', 'replica-hang']);
const REPLICA_FAULTS: ReadonlySet<ScenarioName> = new Set([
  'replica-kill',
  'replica-hang',
  'primary-failover',
]);

function serverOf(node: DrillNode): ClusterNode {
  if (node.server === undefined) {
    throw new Error(`${node.name}: process faults need the local cluster (not --primary URL)`);
  }
  return node.server;
}

/** The standby that has received the most WAL: promoting it loses no acknowledged write. */
async function mostAdvanced(replicas: readonly ClusterNode[]): Promise<number> {
  let best = -1;
  let bestLsn = -1n;
  for (const [i, replica] of replicas.entries()) {
    if (!replica.isRunning()) continue;
    const client = new pg.Client({ connectionString: replica.url, connectionTimeoutMillis: 3_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ lsn: string | null }>(
        "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::text AS lsn",
      );
      const lsn = BigInt(rows[0]?.lsn?.split('.')[0] ?? '-1');
      if (lsn > bestLsn) {
        bestLsn = lsn;
        best = i;
      }
    } catch {
      // A replica that does not answer cannot be promoted.
    } finally {
      await client.end().catch(() => {});
    }
  }
  if (best < 0) throw new Error('primary-failover: no running replica to promote');
  return best;
}

export function planFault(
  name: ScenarioName,
  targets: DrillTargets,
  rng: () => number,
  holdMs: number,
): PlannedFault | undefined {
  const { primary } = targets;
  // After a failover the promoted replica's endpoint leads to the new primary: process faults
  // pick only nodes that are still replicas (and network faults any replica endpoint).
  const replicas = PROCESS_FAULTS.has(name)
    ? targets.replicas.filter((r) => r.server !== undefined)
    : targets.replicas;
  if (REPLICA_FAULTS.has(name) && replicas.length === 0) return undefined;
  switch (name) {
    case 'replica-kill': {
      const node = pick(rng, replicas);
      return {
        name,
        target: node.name,
        description: `SIGKILL ${node.name}, restart after ${Math.round(holdMs / 1000)} s`,
        inject: () => serverOf(node).kill(),
        heal: () => serverOf(node).start(),
      };
    }
    case 'replica-hang': {
      const node = pick(rng, replicas);
      return {
        name,
        target: node.name,
        description: `SIGSTOP ${node.name} and its backends for ${Math.round(holdMs / 1000)} s`,
        inject: async () => serverOf(node).pause(),
        heal: async () => serverOf(node).resume(),
      };
    }
    case 'primary-hang':
      return {
        name,
        target: primary.name,
        description: `SIGSTOP the primary and its backends for ${Math.round(holdMs / 1000)} s`,
        inject: async () => serverOf(primary).pause(),
        heal: async () => serverOf(primary).resume(),
      };
    case 'network-blackhole': {
      const node = replicas.length > 0 ? pick(rng, replicas) : primary;
      return {
        name,
        target: node.name,
        description: `black-hole the network path to ${node.name} for ${Math.round(holdMs / 1000)} s`,
        inject: async () => {
          node.proxy.blackhole();
        },
        heal: async () => {
          node.proxy.heal();
        },
      };
    }
    case 'redis-loss': {
      const proxy = targets.redisProxy;
      if (proxy === undefined) return undefined;
      return {
        name,
        target: 'redis',
        description: `black-hole the network path to Redis for ${Math.round(holdMs / 1000)} s`,
        inject: async () => {
          proxy.blackhole();
        },
        heal: async () => {
          proxy.heal();
        },
      };
    }
    case 'primary-failover':
      return {
        name,
        target: primary.name,
        description:
          'SIGKILL the primary and promote the most advanced replica; the pool finds it among its primary candidates',
        inject: async () => {
          const cluster = targets.cluster;
          if (cluster === undefined) throw new Error('primary-failover needs the local cluster');
          await cluster.primary.kill();
          const index = await mostAdvanced(cluster.replicas);
          const promoted = await cluster.promote(index);
          // Nothing is re-pointed: the pool lists every node as a primary candidate and finds
          // the promoted one itself (primary discovery). The old primary stays down.
          primary.server = undefined;
          const promotedNode = replicas.find((r) => r.server === promoted);
          if (promotedNode) promotedNode.server = undefined;
        },
        heal: async () => {},
      };
  }
}
