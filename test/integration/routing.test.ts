/**
 * Read/write routing on a real primary with two streaming replicas, and what happens to a steady
 * read load when replicas are SIGKILLed.
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
    replicas: replicas.map((r) => r.createPool({ max: 4 })),
    logger: false,
    ...options,
  });
  open.push(db);
  return db;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 2_000 })));
});

/** The port of the server that ran the statement, to tell nodes apart. */
const WHO = "SELECT current_setting('port')::int AS port, pg_is_in_recovery() AS replica";

function nodeName(port: number): string {
  const node = handle.cluster.nodes.find((n) => n.port === port);
  return node?.name ?? `unknown:${port}`;
}

describe('routing', () => {
  it('spreads reads over both replicas and sends writes to the primary', async () => {
    const db = makeDb({ routing: { balancer: 'round-robin' } });
    const seen = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const { rows } = await db.read<{ port: number; replica: boolean }>(WHO);
      expect(rows[0]?.replica).toBe(true);
      const name = nodeName(rows[0]!.port);
      seen.set(name, (seen.get(name) ?? 0) + 1);
    }
    expect(Object.fromEntries(seen)).toEqual({ 'replica-1': 20, 'replica-2': 20 });

    const write = await db.write<{ port: number; replica: boolean }>(WHO);
    expect(write.rows[0]?.replica).toBe(false);
    const query = await db.query<{ port: number; replica: boolean }>(WHO);
    expect(query.rows[0]?.replica).toBe(false);
  });

  it('sees its writes on the replicas once replication caught up', async () => {
    const db = makeDb();
    await db.write('CREATE TABLE IF NOT EXISTS routing_t (id int primary key, v text)');
    await db.write('INSERT INTO routing_t VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = $2', [
      1,
      'hello',
    ]);
    await handle.cluster.waitForReplication();
    for (let i = 0; i < 4; i++) {
      const { rows } = await db.read('SELECT v FROM routing_t WHERE id = $1', [1]);
      expect(rows).toEqual([{ v: 'hello' }]);
    }
  });

  it('a write sent to a replica by auto routing is re-run on the primary (25006)', async () => {
    const db = makeDb({ routing: { queryRouting: 'auto' } });
    await db.write('CREATE TABLE IF NOT EXISTS routing_fn (n int)');
    // A function with a side effect looks like a plain SELECT to any classifier.
    await db.write(
      'CREATE OR REPLACE FUNCTION routing_bump() RETURNS int LANGUAGE sql AS $$ INSERT INTO routing_fn VALUES (1) RETURNING n $$',
    );
    await handle.cluster.waitForReplication();
    const { rows } = await db.query('SELECT routing_bump() AS n');
    expect(rows).toEqual([{ n: 1 }]);
    const count = await db.write('SELECT count(*)::int AS c FROM routing_fn');
    expect(count.rows).toEqual([{ c: 1 }]);
  });
});

describe('read overload on the replicas', () => {
  it('refuses reads at the saturated replicas (E_QUEUE_FULL) and leaves the primary to writes', async () => {
    // 4 permits and 4 places in each queue: 16 slow reads fill both replicas.
    const db = makeDb({ queue: { maxWaiting: 4, acquireTimeout: 30_000 } });
    await db.write('CREATE TABLE IF NOT EXISTS routing_w (id serial primary key)');
    const slow = Array.from({ length: 16 }, () =>
      db.read<{ port: number }>("SELECT pg_sleep(1.5), current_setting('port')::int AS port"),
    );
    try {
      await until('both replica queues to fill', () =>
        db
          .stats()
          .endpoints.filter((e) => e.role === 'replica')
          .every((e) => e.inFlight === 4 && e.queued === 4),
      );
      // While the replicas are saturated: more reads are refused there, writes run on the primary.
      const [reads, writes] = await Promise.all([
        load(40, 8, async () => (await db.read<{ port: number }>(WHO)).rows[0]!.port),
        load(20, 2, async () => db.write('INSERT INTO routing_w DEFAULT VALUES')),
      ]);
      expect(writes.filter((w) => !w.ok)).toEqual([]);
      const refusals = reads.filter((r) => !r.ok).map((r) => (r.ok ? null : r.error));
      for (const err of refusals) {
        expect(err).toMatchObject({
          code: 'E_QUEUE_FULL',
          endpoint: expect.stringMatching(/^replica-/),
        });
      }
      // Reads that found room (a permit freed meanwhile) ran on a replica, never on the primary.
      const servedBy = new Set(reads.map((r) => (r.ok ? nodeName(r.value) : 'refused')));
      expect(servedBy.has('primary')).toBe(false);
      const primary = db.stats().endpoints.find((e) => e.role === 'primary');
      expect(primary?.rejected['queue-full']).toBe(0);
    } finally {
      const settled = await Promise.allSettled(slow);
      const ports = settled.map((s) =>
        s.status === 'fulfilled' ? nodeName(s.value.rows[0]!.port) : 'failed',
      );
      expect(ports.filter((p) => !p.startsWith('replica-'))).toEqual([]);
    }
  });
});

describe.skipIf(!handle.canControlProcesses)(`replica faults (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('SIGKILL of one replica under a steady read load fails no read', async () => {
    const [victim, survivor] = handle.cluster.replicas;
    const db = makeDb({ breaker: { volumeThreshold: 5, resetTimeout: 60_000 } });
    try {
      const outcomes = await load(600, 4, async (i) => {
        if (i === 100) await victim!.kill();
        return (await db.read<{ port: number }>(WHO)).rows[0]!.port;
      });
      const failures = outcomes.filter((o) => !o.ok);
      expect(failures).toEqual([]);
      // After the kill every read was served by the survivor (or the primary as fallback).
      const lastPorts = outcomes.slice(-200).map((o) => (o.ok ? nodeName(o.value) : 'failed'));
      expect(lastPorts).not.toContain(victim!.name);
      expect(lastPorts).toContain(survivor!.name);
      const victimStats = db.stats().endpoints.find((e) => e.name === victim!.name);
      expect(victimStats?.breaker).toBe('open');
    } finally {
      await victim!.start();
    }
  });

  it('with both replicas down, reads fall back to the primary', async () => {
    const db = makeDb({ breaker: { volumeThreshold: 2, resetTimeout: 60_000 } });
    await db.read(WHO); // open connections on a replica first
    const replicas = handle.cluster.replicas;
    try {
      await Promise.all(replicas.map((r) => r.kill()));
      const outcomes = await load(
        100,
        4,
        async () => (await db.read<{ port: number }>(WHO)).rows[0]!.port,
      );
      expect(outcomes.filter((o) => !o.ok)).toEqual([]);
      const servedBy = new Set(outcomes.map((o) => (o.ok ? nodeName(o.value) : 'failed')));
      expect(servedBy).toEqual(new Set(['primary']));
    } finally {
      await Promise.all(replicas.map((r) => r.start()));
    }
  });

  it('without fallback, reads fail fast with NoHealthyEndpointError once both circuits opened', async () => {
    const db = makeDb({
      breaker: { volumeThreshold: 1, resetTimeout: 60_000 },
      routing: { fallbackToPrimary: false },
      retry: { retries: 1 },
    });
    const replicas = handle.cluster.replicas;
    try {
      await Promise.all(replicas.map((r) => r.kill()));
      await until('both replica circuits to open', async () => {
        await db.read('SELECT 1').catch(() => {});
        return (
          db.stats().endpoints.filter((e) => e.role === 'replica' && e.breaker === 'open')
            .length === 2
        );
      });
      await expect(db.read('SELECT 1')).rejects.toMatchObject({ code: 'E_NO_HEALTHY_ENDPOINT' });
    } finally {
      await Promise.all(replicas.map((r) => r.start()));
    }
  });
});
