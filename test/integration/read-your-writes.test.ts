/**
 * Read-your-writes on a real cluster whose replicas lag: in a session, a read after a write never
 * sees the old value, however far behind the replicas are; outside a session it may.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';

const handle = useCluster({ replicas: 2 });
let db: ResilientPool | undefined;

afterAll(async () => {
  await db?.end({ timeout: 5_000 });
});

describe('read-your-writes', () => {
  it('a session never reads a value older than its own write, with one replica paused in replay', async () => {
    const { primary, replicas } = handle.cluster;
    db = new ResilientPool({
      primary: primary.createPool({ max: 4 }),
      replicas: replicas.map((r) => r.createPool({ max: 4 })),
      logger: false,
      routing: { balancer: 'round-robin', consistencyWaitMs: 50 },
      health: { intervalMs: 200 },
    });
    const pool = db;
    await pool.write('CREATE TABLE IF NOT EXISTS ryw (id int primary key, v int not null)');
    await pool.write('INSERT INTO ryw VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET v = 0');
    await handle.cluster.waitForReplication();
    const paused = replicas[1]!.createPool({ max: 1 });
    await paused.query('SELECT pg_wal_replay_pause()');
    try {
      let staleInSession = 0;
      let staleOutside = 0;
      for (let i = 1; i <= 60; i++) {
        await pool.session(async () => {
          await pool.write('UPDATE ryw SET v = $1 WHERE id = 1', [i]);
          const { rows } = await pool.read<{ v: number }>('SELECT v FROM ryw WHERE id = 1');
          if (rows[0]!.v < i) staleInSession++;
        });
        await pool.write('UPDATE ryw SET v = $1 WHERE id = 1', [i + 1000]);
        const { rows } = await pool.read<{ v: number }>('SELECT v FROM ryw WHERE id = 1');
        if (rows[0]!.v < i + 1000) staleOutside++;
      }
      expect(staleInSession).toBe(0);
      // Shown, not asserted: without a session, reads may hit the paused replica.
      console.log(
        `read-your-writes: stale reads outside a session ${staleOutside}/60, inside 0/60`,
      );
    } finally {
      await paused.query('SELECT pg_wal_replay_resume()');
      await paused.end();
    }
  });
});
