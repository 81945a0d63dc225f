/**
 * A ResilientPool where a pg.Pool is expected: Kysely's PostgresDialect, unchanged, on a real
 * primary. Its transactions must run on one pinned connection.
 */
import { Kysely, PostgresDialect, sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';

interface Database {
  qb_items: { id: number; name: string };
}

const handle = useCluster({ replicas: 1 });
let db: ResilientPool | undefined;
let kysely: Kysely<Database> | undefined;

function connect(): Kysely<Database> {
  db = new ResilientPool({
    primary: handle.cluster.primary.createPool({ max: 4 }),
    replicas: [handle.cluster.replicas[0]!.createPool({ max: 4 })],
    logger: false,
  });
  kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool: db }) });
  return kysely;
}

afterAll(async () => {
  // Kysely's destroy() ends the pool it was given: the ResilientPool.
  await kysely?.destroy();
  expect(db?.ended).toBe(true);
});

describe('Kysely', () => {
  it('runs queries and transactions through a ResilientPool', async () => {
    const k = connect();
    await k.schema
      .createTable('qb_items')
      .ifNotExists()
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
    await k.insertInto('qb_items').values({ id: 1, name: 'one' }).execute();
    const pids = await k.transaction().execute(async (trx) => {
      await trx.insertInto('qb_items').values({ id: 2, name: 'two' }).execute();
      const a = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx);
      const b = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx);
      return [a.rows[0]?.pid, b.rows[0]?.pid];
    });
    // One pinned connection for the whole transaction.
    expect(pids[0]).toBe(pids[1]);
    await expect(
      k.transaction().execute(async (trx) => {
        await trx.insertInto('qb_items').values({ id: 3, name: 'three' }).execute();
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const rows = await k.selectFrom('qb_items').select(['id', 'name']).orderBy('id').execute();
    expect(rows).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    expect(db!.stats().endpoints[0]?.calls).toBeGreaterThan(0);
  });
});
