/**
 * resilient-pool/kysely on a real primary with a streaming replica: Kysely selects on the
 * replica, everything else and transactions on the primary, and `transaction(kysely, db, fn)`
 * re-running a serialization failure through `db.transaction()`.
 */
import { type Generated, Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { onPrimary, ResilientDialect, transaction } from '../../src/integrations/kysely/index.js';
import { useCluster } from '../support/cluster.js';

interface Database {
  kr_items: { id: number; name: string };
  kr_counters: { id: Generated<number>; label: string };
  kr_skew: { class: number; value: number };
}

const handle = useCluster({ replicas: 1 });
let db: ResilientPool;
let kysely: Kysely<Database>;

/** Calls an endpoint of the given role has served so far. */
function calls(role: 'primary' | 'replica'): number {
  return db
    .stats()
    .endpoints.filter((e) => e.role === role)
    .reduce((sum, e) => sum + e.calls, 0);
}

const inRecovery = sql<boolean>`pg_is_in_recovery()`.as('replica');

beforeAll(async () => {
  db = new ResilientPool({
    primary: handle.cluster.primary.createPool({ max: 6 }),
    replicas: [handle.cluster.replicas[0]!.createPool({ max: 6 })],
    retry: { minTimeout: 5, maxTimeout: 20 },
    logger: false,
  });
  kysely = new Kysely<Database>({ dialect: new ResilientDialect({ pool: db }) });
  await kysely.schema
    .createTable('kr_items')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .execute();
  await kysely.schema
    .createTable('kr_counters')
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('label', 'text', (c) => c.notNull())
    .execute();
  await kysely.schema
    .createTable('kr_skew')
    .addColumn('class', 'integer', (c) => c.notNull())
    .addColumn('value', 'integer', (c) => c.notNull())
    .execute();
});

afterAll(async () => {
  // Kysely's destroy() ends the pool it was given, as with PostgresDialect.
  await kysely?.destroy();
  expect(db?.ended).toBe(true);
});

describe('ResilientDialect routing', () => {
  it('sends selects to the replica and writes to the primary', async () => {
    const inserted = await kysely
      .insertInto('kr_items')
      .values({ id: 1, name: 'one' })
      .returning(['id', inRecovery])
      .executeTakeFirstOrThrow();
    expect(inserted).toEqual({ id: 1, replica: false });
    const updated = await kysely
      .updateTable('kr_items')
      .set({ name: 'uno' })
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    expect(updated.numUpdatedRows).toBe(1n);
    await handle.cluster.waitForReplication();

    const replicaCalls = calls('replica');
    const row = await kysely
      .selectFrom('kr_items')
      .select(['id', 'name', inRecovery])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ id: 1, name: 'uno', replica: true });
    expect(calls('replica')).toBe(replicaCalls + 1);

    const count = await kysely
      .selectFrom('kr_items')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    expect(count.n).toBe('1');
    expect(calls('replica')).toBe(replicaCalls + 2);
  });

  it('keeps locking selects, side-effecting calls, raw sql and onPrimary() on the primary', async () => {
    const replicaCalls = calls('replica');
    // FOR UPDATE on a hot standby fails with 25006: that it succeeds shows it ran on the primary.
    const locked = await kysely
      .selectFrom('kr_items')
      .select(['id', inRecovery])
      .where('id', '=', 1)
      .forUpdate()
      .execute();
    expect(locked).toEqual([{ id: 1, replica: false }]);
    const shared = await kysely.selectFrom('kr_items').select(inRecovery).forShare().execute();
    expect(shared).toEqual([{ replica: false }]);
    const seq = await kysely
      .selectNoFrom([sql<string>`nextval('kr_counters_id_seq')`.as('n'), inRecovery])
      .executeTakeFirstOrThrow();
    expect(seq.replica).toBe(false);
    const raw = await sql<{ replica: boolean }>`SELECT pg_is_in_recovery() AS replica`.execute(
      kysely,
    );
    expect(raw.rows).toEqual([{ replica: false }]);
    const forced = await onPrimary(kysely).selectNoFrom(inRecovery).executeTakeFirstOrThrow();
    expect(forced.replica).toBe(false);
    expect(calls('replica')).toBe(replicaCalls);
  });

  it('runs kysely.transaction() on one primary connection and rolls back a throw', async () => {
    const seen = await kysely.transaction().execute(async (trx) => {
      await trx.insertInto('kr_items').values({ id: 2, name: 'two' }).execute();
      const a = await trx
        .selectNoFrom([sql<number>`pg_backend_pid()`.as('pid'), inRecovery])
        .executeTakeFirstOrThrow();
      const b = await trx
        .selectFrom('kr_items')
        .select([sql<number>`pg_backend_pid()`.as('pid'), inRecovery])
        .where('id', '=', 2)
        .executeTakeFirstOrThrow();
      return [a, b];
    });
    expect(seen[0]).toEqual(seen[1]);
    expect(seen[0]?.replica).toBe(false);

    await expect(
      kysely.transaction().execute(async (trx) => {
        await trx.insertInto('kr_items').values({ id: 3, name: 'three' }).execute();
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const ids = await onPrimary(kysely).selectFrom('kr_items').select('id').orderBy('id').execute();
    expect(ids.map((r) => r.id)).toEqual([1, 2]);
  });

  it('fails the COMMIT of a Kysely transaction whose error was swallowed', async () => {
    await expect(
      kysely
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute(async (trx) => {
          await trx
            .insertInto('kr_items')
            .values({ id: 1, name: 'duplicate' })
            .execute()
            .catch(() => {});
          return 'committed?';
        }),
    ).rejects.toMatchObject({ name: 'AbortedTransactionError' });
    const names = await onPrimary(kysely).selectFrom('kr_items').select('name').execute();
    expect(names.map((r) => r.name)).not.toContain('duplicate');
  });

  it('keeps a kysely.connection() block on one session once it sent more than a read', async () => {
    const result = await kysely.connection().execute(async (conn) => {
      const first = await conn.selectNoFrom(inRecovery).executeTakeFirstOrThrow();
      await sql`SET application_name = 'kysely-pinned'`.execute(conn);
      await conn.insertInto('kr_counters').values({ label: 'a' }).execute();
      const session = await conn
        .selectNoFrom([
          sql<string>`current_setting('application_name')`.as('app'),
          sql<string>`lastval()::text`.as('last'),
          inRecovery,
        ])
        .executeTakeFirstOrThrow();
      return { first, session };
    });
    // The first read needed no session: it went to the replica.
    expect(result.first.replica).toBe(true);
    // After SET, everything ran on the same primary session: its setting, its lastval().
    expect(result.session.app).toBe('kysely-pinned');
    expect(result.session.replica).toBe(false);
    expect(Number(result.session.last)).toBeGreaterThan(0);
  });
});

describe('transaction(kysely, db, fn)', () => {
  it('commits on the primary and rolls back a throw', async () => {
    const out = await transaction(kysely, db, async (trx, { attempt }) => {
      await trx.insertInto('kr_items').values({ id: 10, name: 'ten' }).execute();
      const count = await trx
        .selectFrom('kr_items')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(count.n)).toBeGreaterThan(0);
      const r = await trx.selectNoFrom(inRecovery).executeTakeFirstOrThrow();
      return { attempt, replica: r.replica, isTransaction: trx.isTransaction };
    });
    expect(out).toEqual({ attempt: 1, replica: false, isTransaction: true });

    await expect(
      transaction(kysely, db, async (trx) => {
        await trx.insertInto('kr_items').values({ id: 12, name: 'twelve' }).execute();
        throw new Error('no thanks');
      }),
    ).rejects.toThrow('no thanks');
    const ids = await onPrimary(kysely)
      .selectFrom('kr_items')
      .select('id')
      .where('id', '>=', 10)
      .orderBy('id')
      .execute();
    expect(ids.map((r) => r.id)).toEqual([10]);
  });

  it('runs a nested savepoint through info.tx and refuses Kysely nesting', async () => {
    await transaction(kysely, db, async (trx, { tx }) => {
      await trx.insertInto('kr_items').values({ id: 20, name: 'kept' }).execute();
      await expect(
        tx.transaction(async () => {
          await trx.insertInto('kr_items').values({ id: 21, name: 'undone' }).execute();
          throw new Error('inner');
        }),
      ).rejects.toThrow('inner');
      expect(() => trx.transaction()).toThrow(/not supported/);
      await expect(trx.startTransaction().execute()).rejects.toThrow(/info\.tx\.transaction/);
    });
    const ids = await onPrimary(kysely)
      .selectFrom('kr_items')
      .select('id')
      .where('id', '>=', 20)
      .execute();
    expect(ids.map((r) => r.id)).toEqual([20]);
  });

  it('re-runs a serialization failure and commits both transactions', async () => {
    await kysely
      .insertInto('kr_skew')
      .values([
        { class: 1, value: 10 },
        { class: 2, value: 100 },
      ])
      .execute();
    // Both first tries read before either writes: the textbook write skew that SERIALIZABLE
    // refuses (PostgreSQL manual 13.2.3), so one of them fails with 40001 and is re-run.
    let arrived = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((resolve) => {
      release = resolve;
    });
    const attempts: number[][] = [[], []];
    const skew = (reads: number, writes: number, slot: 0 | 1) =>
      transaction(
        kysely,
        db,
        async (trx, { attempt }) => {
          attempts[slot]!.push(attempt);
          const { total } = await trx
            .selectFrom('kr_skew')
            .select((eb) => eb.fn.sum<string>('value').as('total'))
            .where('class', '=', reads)
            .executeTakeFirstOrThrow();
          if (attempt === 1) {
            if (++arrived === 2) release();
            await bothRead;
          }
          await trx
            .insertInto('kr_skew')
            .values({ class: writes, value: Number(total) })
            .execute();
          return attempt;
        },
        { isolation: 'serializable', retries: 5 },
      );
    const results = await Promise.all([skew(1, 2, 0), skew(2, 1, 1)]);
    // One committed at its first try, the other after at least one re-run.
    expect(results.sort()).toEqual([1, expect.any(Number)]);
    expect(Math.max(...results)).toBeGreaterThan(1);
    expect(attempts.flat().length).toBeGreaterThan(2);
    const rows = await onPrimary(kysely).selectFrom('kr_skew').select('value').execute();
    expect(rows).toHaveLength(4);
  });
});

describe('the snippet of docs/integrations.md', () => {
  it('runs as written', async () => {
    await db.write(
      'CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance int NOT NULL)',
    );
    // The table exists before the application starts (made by a migration), on every node.
    await handle.cluster.waitForReplication();
    const replicaCalls = calls('replica');
    // --- the snippet of docs/integrations.md -------------------------------------------------
    interface Database {
      accounts: { id: Generated<number>; owner: string; balance: number };
    }

    const kysely = new Kysely<Database>({ dialect: new ResilientDialect({ pool: db }) });

    // An insert runs on the primary.
    const { id } = await kysely
      .insertInto('accounts')
      .values({ owner: 'ada', balance: 100 })
      .returning('id')
      .executeTakeFirstOrThrow();

    // A select runs on a replica, through db.read(): balanced, kept away from unhealthy or lagging
    // replicas, with the primary as the fallback. A replica may not have the insert yet.
    const rich = await kysely
      .selectFrom('accounts')
      .selectAll()
      .where('balance', '>', 50)
      .execute();

    // onPrimary() sends a read to the primary, to see a write made just before.
    const mine = await onPrimary(kysely)
      .selectFrom('accounts')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

    // The whole callback runs again after a serialization failure (40001), a deadlock (40P01) or a
    // lock timeout (55P03), as db.transaction() does.
    await transaction(
      kysely,
      db,
      async (trx) => {
        const { balance } = await trx
          .selectFrom('accounts')
          .select('balance')
          .where('id', '=', id)
          .executeTakeFirstOrThrow();
        await trx
          .updateTable('accounts')
          .set({ balance: balance - 10 })
          .where('id', '=', id)
          .execute();
      },
      { isolation: 'serializable', retries: 5 },
    );
    // ------------------------------------------------------------------------------------------
    expect(calls('replica')).toBe(replicaCalls + 1);
    expect(rich.length).toBeLessThanOrEqual(1);
    expect(mine).toEqual({ id, owner: 'ada', balance: 100 });
    const after = await onPrimary(kysely)
      .selectFrom('accounts')
      .select('balance')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(after.balance).toBe(90);
  });
});
