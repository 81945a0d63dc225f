/**
 * Drizzle's node-postgres driver over a ResilientPool, on the real cluster, from the TypeScript
 * source: transactions are atomic and pinned to one connection (drizzle-scenarios.ts; the same
 * scenarios run minified in drizzle-bundle.test.ts), and reads can go to replicas, either with
 * `routing.queryRouting: 'auto'` or with Drizzle's own `withReplicas()`. `drizzle({ client: db })`
 * takes the ResilientPool without a cast.
 */
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, pgTable, serial, text, withReplicas } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';
import { CONCURRENT, CREATE_ITEMS, items, runDrizzleScenarios } from './drizzle-scenarios.js';

const handle = useCluster({ replicas: 1 });
const open: ResilientPool<pg.Pool>[] = [];

function track(db: ResilientPool<pg.Pool>): ResilientPool<pg.Pool> {
  open.push(db);
  return db;
}

/** Statements each endpoint ran (from stats()), by endpoint name. */
function callsOf(...pools: ResilientPool<pg.Pool>[]): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const [i, db] of pools.entries()) {
    for (const e of db.stats().endpoints) calls[`${i}:${e.name}`] = e.calls;
  }
  return calls;
}

function delta(before: Record<string, number>, after: Record<string, number>) {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

beforeAll(async () => {
  const admin = handle.cluster.primary.createPool({ max: 1 });
  await admin.query(CREATE_ITEMS);
  await admin.end();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 5_000 })));
});

describe('Drizzle over a ResilientPool (source)', () => {
  it('is recognised as a pool: transactions roll back, pin one connection each, nest with savepoints', async () => {
    const report = await runDrizzleScenarios(
      ResilientPool,
      handle.cluster.primary.url,
      `src-${process.pid}`,
    );
    expect(report.className).toBe('ResilientPool');
    expect(report.rollback).toEqual({ rejected: 'abort the transaction', rowsAfter: 0 });
    expect(report.savepoint.committed).toEqual(['outer']);
    expect(report.concurrent).toHaveLength(CONCURRENT);
    for (const tx of report.concurrent) {
      expect(tx.saw, `${tx.tag} sees only its own row`).toEqual([tx.tag]);
      expect(new Set(tx.pids).size, `${tx.tag} runs on one connection`).toBe(1);
    }
    // Eight transactions open at once: eight connections.
    expect(new Set(report.concurrent.map((tx) => tx.pids[0])).size).toBe(CONCURRENT);
    expect(report.committed).toEqual(report.concurrent.map((tx) => tx.tag).sort());
  });

  it("routes Drizzle's reads to a replica with queryRouting: 'auto'; writes and transactions stay on the primary", async () => {
    const db = track(
      new ResilientPool({
        primary: handle.cluster.primary.createPool({ max: 4 }),
        replicas: [handle.cluster.replicas[0]!.createPool({ max: 4 })],
        routing: { queryRouting: 'auto' },
        health: { enabled: false },
        logger: false,
      }),
    );
    const orm = drizzle({ client: db });
    const batch = `auto-${process.pid}`;
    await orm.insert(items).values({ batch, tag: 'a' });
    await handle.cluster.waitForReplication();

    const before = callsOf(db);
    const rows = await orm.select({ tag: items.tag }).from(items).where(eq(items.batch, batch));
    const onStandby = await orm.execute<{ r: boolean }>(sql`select pg_is_in_recovery() as r`);
    expect(rows).toEqual([{ tag: 'a' }]);
    expect(onStandby.rows[0]?.r).toBe(true);
    expect(delta(before, callsOf(db))).toEqual({ '0:primary': 0, '0:replica-1': 2 });

    const inTransaction = await orm.transaction(async (tx) => {
      await tx.insert(items).values({ batch, tag: 'b' });
      return (await tx.execute<{ r: boolean }>(sql`select pg_is_in_recovery() as r`)).rows[0]?.r;
    });
    // A transaction's reads run on its primary connection, and see its writes.
    expect(inTransaction).toBe(false);
    await orm.update(items).set({ tag: 'c' }).where(eq(items.batch, batch));
    const primaryTags = await db.write<{ tag: string }>(
      'SELECT tag FROM drizzle_items WHERE batch = $1 ORDER BY tag',
      [batch],
    );
    expect(primaryTags.rows).toEqual([{ tag: 'c' }, { tag: 'c' }]);
  });

  it("pairs with Drizzle's withReplicas(): selects to the replica's ResilientPool, the rest to the primary's", async () => {
    const db = track(
      new ResilientPool({
        primary: handle.cluster.primary.createPool({ max: 4 }),
        health: { enabled: false },
        logger: false,
      }),
    );
    const replicaDb = track(
      new ResilientPool({
        primary: handle.cluster.replicas[0]!.createPool({ max: 4 }),
        health: { enabled: false },
        logger: false,
      }),
    );
    const orm = withReplicas(drizzle({ client: db }), [drizzle({ client: replicaDb })]);
    const batch = `with-replicas-${process.pid}`;

    let before = callsOf(db, replicaDb);
    await orm.insert(items).values({ batch, tag: 'a' });
    await orm.transaction(async (tx) => {
      await tx.insert(items).values({ batch, tag: 'b' });
    });
    await expect(
      orm.transaction(async (tx) => {
        await tx.insert(items).values({ batch, tag: 'lost' });
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const written = delta(before, callsOf(db, replicaDb));
    expect(written['1:primary']).toBe(0);
    expect(written['0:primary']).toBeGreaterThan(0);

    await handle.cluster.waitForReplication();
    before = callsOf(db, replicaDb);
    const rows = await orm
      .select({ tag: items.tag, standby: sql<boolean>`pg_is_in_recovery()` })
      .from(items)
      .where(eq(items.batch, batch))
      .orderBy(items.tag);
    expect(rows).toEqual([
      { tag: 'a', standby: true },
      { tag: 'b', standby: true },
    ]);
    expect(delta(before, callsOf(db, replicaDb))).toEqual({ '0:primary': 0, '1:primary': 1 });
    // $primary reads from the primary when a read must see the latest write.
    const fresh = await orm.$primary
      .select({ standby: sql<boolean>`pg_is_in_recovery()` })
      .from(items)
      .where(eq(items.batch, batch))
      .limit(1);
    expect(fresh).toEqual([{ standby: false }]);
  });
});

describe('the snippet of docs/integrations.md', () => {
  const accounts = pgTable('accounts', {
    id: serial('id').primaryKey(),
    owner: text('owner').notNull(),
    balance: integer('balance').notNull(),
  });

  beforeAll(async () => {
    const admin = handle.cluster.primary.createPool({ max: 1 });
    await admin.query(
      'CREATE TABLE IF NOT EXISTS accounts (id serial PRIMARY KEY, owner text NOT NULL, balance integer NOT NULL)',
    );
    await admin.query('TRUNCATE accounts');
    await admin.end();
  });

  it('Drizzle with queryRouting auto, then withReplicas, then re-runs in db.transaction()', async () => {
    const PRIMARY_URL = handle.cluster.primary.url;
    const REPLICA_URL = handle.cluster.replicas[0]!.url;
    // --- the snippet of docs/integrations.md -------------------------------------------------
    const db = new ResilientPool({
      primary: new pg.Pool({ connectionString: PRIMARY_URL }),
      replicas: [new pg.Pool({ connectionString: REPLICA_URL })],
      routing: { queryRouting: 'auto' },
    });
    const orm = drizzle({ client: db });

    await orm.insert(accounts).values({ owner: 'ada', balance: 100 }); // the primary
    // ------------------------------------------------------------------------------------------
    track(db);
    await handle.cluster.waitForReplication();
    const before = callsOf(db);
    // --- the snippet of docs/integrations.md -------------------------------------------------
    const [ada] = await orm.select().from(accounts).where(eq(accounts.owner, 'ada')); // a replica

    await orm.transaction(async (tx) => {
      // One primary connection from BEGIN to COMMIT; reads in here see the writes in here.
      await tx
        .update(accounts)
        .set({ balance: sql`${accounts.balance} - 10` })
        .where(eq(accounts.owner, 'ada'));
      await tx.insert(accounts).values({ owner: 'bob', balance: 10 });
    });
    // ------------------------------------------------------------------------------------------
    expect(ada).toMatchObject({ owner: 'ada', balance: 100 });
    expect(delta(before, callsOf(db))['0:replica-1']).toBe(1);

    const primaryPool = handle.cluster.primary.createPool();
    const replicaPool = handle.cluster.replicas[0]!.createPool();
    // --- the snippet of docs/integrations.md -------------------------------------------------
    const primaryDb = drizzle({ client: new ResilientPool({ primary: primaryPool }) });
    const replicaDb = drizzle({ client: new ResilientPool({ primary: replicaPool }) });
    const replicated = withReplicas(primaryDb, [replicaDb]);

    await replicated.insert(accounts).values({ owner: 'cy', balance: 5 }); // the primary
    const all = await replicated.select().from(accounts); // the replica
    const fresh = await replicated.$primary.select().from(accounts); // the primary
    // ------------------------------------------------------------------------------------------
    track(primaryDb.$client);
    track(replicaDb.$client);
    expect(fresh.map((r) => r.owner).sort()).toEqual(['ada', 'bob', 'cy']);
    // The replica may not have replayed the last insert yet; it has the earlier rows.
    expect(all.map((r) => r.owner)).toEqual(expect.arrayContaining(['ada', 'bob']));
    expect(replicaDb.$client.stats().endpoints[0]?.calls).toBe(1);

    // Two of these at once conflict under serializable isolation; db.transaction() re-runs the
    // one that fails, so both increments land.
    let tries = 0;
    const increment = () =>
      // --- the snippet of docs/integrations.md -----------------------------------------------
      db.transaction(
        async (tx) => {
          tries++;
          const txOrm = drizzle({ client: tx.client as pg.PoolClient });
          const [row] = await txOrm.select().from(accounts).where(eq(accounts.owner, 'ada'));
          await txOrm
            .update(accounts)
            .set({ balance: (row?.balance ?? 0) + 1 })
            .where(eq(accounts.owner, 'ada'));
        },
        { isolation: 'serializable' },
      );
    // ------------------------------------------------------------------------------------------
    await Promise.all([increment(), increment()]);
    const [after] = await primaryDb.select().from(accounts).where(eq(accounts.owner, 'ada'));
    expect(after?.balance).toBe(92);
    expect(tries).toBeGreaterThanOrEqual(2);
  });
});
