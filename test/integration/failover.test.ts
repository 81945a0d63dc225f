/**
 * A real failover with the cluster kit: kill the primary, promote a replica, the other replica
 * follows the new timeline, and nothing committed before the kill is lost.
 */
import { describe, expect, it } from 'vitest';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';

const handle = useCluster({ replicas: 2 });

describe.skipIf(!handle.canControlProcesses)(`promote() (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('promotes a replica, re-points the other, keeps every committed row', async () => {
    const cluster = handle.cluster;
    const oldPrimary = cluster.primary;
    const before = oldPrimary.createPool({ max: 2 });
    await before.query('CREATE TABLE failover_t (id int primary key)');
    await before.query('INSERT INTO failover_t SELECT generate_series(1, 500)');
    await cluster.waitForReplication();
    await before.end();

    const promoted = await cluster.promote(0);
    expect(promoted.name).toBe('replica-1');
    expect(cluster.primary).toBe(promoted);
    expect(cluster.replicas.map((r) => r.name)).toEqual(['replica-2']);
    expect(oldPrimary.role).toBe('former-primary');
    expect(oldPrimary.isRunning()).toBe(false);

    const writer = promoted.createPool({ max: 2 });
    const recovery = await writer.query('SELECT pg_is_in_recovery() AS r');
    expect(recovery.rows).toEqual([{ r: false }]);
    expect((await writer.query('SELECT count(*)::int AS n FROM failover_t')).rows).toEqual([
      { n: 500 },
    ]);
    await writer.query('INSERT INTO failover_t VALUES (501)');

    // The remaining replica follows the promoted node's new timeline.
    await cluster.waitForReplication(20_000);
    const reader = cluster.replicas[0]!.createPool({ max: 1 });
    expect((await reader.query('SELECT count(*)::int AS n FROM failover_t')).rows).toEqual([
      { n: 501 },
    ]);
    await expect(oldPrimary.start()).rejects.toThrow(/pg_rewind/);
    await expect(cluster.promote(5)).rejects.toThrow(RangeError);
  });
});
