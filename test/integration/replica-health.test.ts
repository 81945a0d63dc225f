/**
 * Replica health on a real cluster: a frozen replica is ejected by the probes while reads go on,
 * and re-admitted by a probe after it thaws; a replica whose replay is paused stops getting
 * reads while it lags, and gets them again once it catches up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { load, until } from '../support/wait.js';

const handle = useCluster({ replicas: 2 });
const open: ResilientPool[] = [];

function makeDb(options: Partial<ResilientPoolOptions> = {}): ResilientPool {
  const { primary, replicas } = handle.cluster;
  const db = new ResilientPool({
    primary: primary.createPool({ max: 4 }),
    replicas: replicas.map((r) => r.createPool({ max: 4, query_timeout: 2_000 })),
    logger: false,
    health: { intervalMs: 200, timeoutMs: 300 },
    ...options,
  });
  open.push(db);
  return db;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 5_000 })));
});

const PORT = "SELECT current_setting('port')::int AS port";
const nameOf = (port: number) => handle.cluster.nodes.find((n) => n.port === port)?.name;

describe.skipIf(!handle.canControlProcesses)(`replica health (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('ejects a SIGSTOPped replica under read load without failing a read, and re-admits it by probe', async () => {
    const db = makeDb();
    const events: Array<[string, string]> = [];
    db.on('eject', (e) => events.push(['eject', e.endpoint]));
    db.on('readmit', (e) => events.push(['readmit', e.endpoint]));
    const victim = handle.cluster.replicas[0]!;
    await until('first probes', () => db.stats().endpoints[1]?.health === 'healthy');
    victim.pause();
    let outcomes: Awaited<ReturnType<typeof load<number>>>;
    try {
      outcomes = await load(400, 4, async (i) => {
        if (i === 300) await until('the ejection', () => events.length > 0, { timeoutMs: 5_000 });
        return (await db.read<{ port: number }>(PORT)).rows[0]!.port;
      });
      expect(events[0]).toEqual(['eject', victim.name]);
    } finally {
      victim.resume();
    }
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    // Once ejected, no read went to the frozen replica.
    const late = outcomes.slice(-50).map((o) => (o.ok ? nameOf(o.value) : 'failed'));
    expect(late).not.toContain(victim.name);
    await until('re-admission by a probe', () => events.some(([e]) => e === 'readmit'), {
      timeoutMs: 10_000,
    });
    expect(db.stats().endpoints.find((e) => e.name === victim.name)?.health).toBe('healthy');
  });

  it('holds back a replica whose replay is paused while it lags, then routes to it again', async () => {
    const db = makeDb({ routing: { maxLagBytes: 0, balancer: 'round-robin' } });
    const lagging = handle.cluster.replicas[1]!;
    const admin = lagging.createPool({ max: 1 });
    await db.write('CREATE TABLE IF NOT EXISTS health_lag (id serial, pad text)');
    await until('first probes', () =>
      db.stats().endpoints.every((e) => e.role === 'primary' || e.health === 'healthy'),
    );
    await admin.query('SELECT pg_wal_replay_pause()');
    try {
      await db.write(
        "INSERT INTO health_lag (pad) SELECT repeat('x', 100) FROM generate_series(1, 100)",
      );
      await until(
        'the lag to be seen',
        () => db.stats().endpoints.find((e) => e.name === lagging.name)?.health === 'lagging',
      );
      const served = await Promise.all(
        Array.from({ length: 20 }, async () =>
          nameOf((await db.read<{ port: number }>(PORT)).rows[0]!.port),
        ),
      );
      expect(served).not.toContain(lagging.name);
    } finally {
      await admin.query('SELECT pg_wal_replay_resume()');
    }
    await until(
      'the replica to catch up',
      () => db.stats().endpoints.find((e) => e.name === lagging.name)?.health === 'healthy',
    );
    const served = await Promise.all(
      Array.from({ length: 20 }, async () =>
        nameOf((await db.read<{ port: number }>(PORT)).rows[0]!.port),
      ),
    );
    expect(served).toContain(lagging.name);
  });
});
