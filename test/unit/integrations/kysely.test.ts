/**
 * resilient-pool/kysely with a fake pool: which queries may go to a replica, when a primary
 * client is pinned and released, and the transaction helper's wiring to `db.transaction()`.
 */
import { Kysely, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  isReplicaSafeQuery,
  type KyselyPool,
  onPrimary,
  ResilientDialect,
  type TransactionPool,
  transaction,
} from '../../../src/integrations/kysely/index.js';
import type { PgClientLike, QueryResultLike } from '../../../src/pg-like.js';
import type { Transaction } from '../../../src/pool/transaction.js';

interface Database {
  t: { id: number; name: string };
}

type Sent = { via: 'read' | 'client'; sql: string; params: readonly unknown[] };

function result(command = 'SELECT', rows: unknown[] = [], rowCount = rows.length): QueryResultLike {
  return { command, rows: rows as Record<string, unknown>[], rowCount };
}

/** A pool that records what went where; `answer` decides each statement's result. */
function fakePool(answer: (sql: string) => QueryResultLike | Error = () => result()) {
  const sent: Sent[] = [];
  const connects: Array<'read' | 'write'> = [];
  const releases: Array<Error | boolean | undefined> = [];
  let failConnects = 0;
  const run = (sql: string) => {
    const out = answer(sql);
    return out instanceof Error ? Promise.reject(out) : Promise.resolve(out);
  };
  const pool = {
    read: (text: string, values?: readonly unknown[]) => {
      sent.push({ via: 'read', sql: text, params: values ?? [] });
      return run(text);
    },
    connect: (options?: { role?: 'read' | 'write' }) => {
      connects.push(options?.role ?? 'write');
      if (failConnects > 0) {
        failConnects--;
        return Promise.reject(new Error('connect refused'));
      }
      const client = {
        query: (text: unknown, values?: readonly unknown[]) => {
          if (typeof text === 'object' && text !== null && 'submit' in text) return text;
          sent.push({ via: 'client', sql: String(text), params: values ?? [] });
          return run(String(text));
        },
        release: (err?: Error | boolean) => {
          releases.push(err);
        },
      };
      return Promise.resolve(client as unknown as PgClientLike);
    },
    end: () => Promise.resolve(),
  };
  return {
    pool: pool as unknown as KyselyPool,
    sent,
    connects,
    releases,
    failNextConnect: () => {
      failConnects++;
    },
  };
}

function kyselyOver(pool: KyselyPool, extra: Partial<{ cursor: unknown }> = {}): Kysely<Database> {
  return new Kysely<Database>({
    dialect: new ResilientDialect({ pool, ...(extra as object) }),
  });
}

describe('isReplicaSafeQuery', () => {
  const k = kyselyOver(fakePool().pool);
  const cases: Array<[string, { compile(): Parameters<typeof isReplicaSafeQuery>[0] }, boolean]> = [
    ['a select', k.selectFrom('t').select(['id']).where('id', '=', 1), true],
    ['a join and count', k.selectFrom('t').select((eb) => eb.fn.countAll().as('n')), true],
    ['select for update', k.selectFrom('t').selectAll().forUpdate(), false],
    ['select for no key update', k.selectFrom('t').selectAll().forNoKeyUpdate(), false],
    ['select for share', k.selectFrom('t').selectAll().forShare(), false],
    [
      'select for key share skip locked',
      k.selectFrom('t').selectAll().forKeyShare().skipLocked(),
      false,
    ],
    ['a raw end modifier', k.selectFrom('t').selectAll().modifyEnd(sql`for update`), false],
    ['nextval()', k.selectNoFrom(sql`nextval('s')`.as('n')), false],
    [
      'a data-modifying CTE',
      k
        .with('x', (db) => db.insertInto('t').values({ id: 1, name: 'a' }).returning('id'))
        .selectFrom('x')
        .selectAll(),
      false,
    ],
    ['insert', k.insertInto('t').values({ id: 1, name: 'a' }), false],
    ['update', k.updateTable('t').set({ name: 'b' }), false],
    ['delete', k.deleteFrom('t'), false],
    ['DDL', k.schema.createTable('u').addColumn('id', 'integer'), false],
    ['onPrimary()', onPrimary(k).selectFrom('t').selectAll(), false],
  ];
  it.each(cases)('%s', (_name, query, expected) => {
    expect(isReplicaSafeQuery(query.compile())).toBe(expected);
  });

  it('answers false for a raw sql query, whatever it says', () => {
    expect(isReplicaSafeQuery(sql`SELECT 1`.compile(k))).toBe(false);
  });
});

describe('ResilientDialect', () => {
  it('sends a select through db.read() and checks nothing out', async () => {
    const fake = fakePool();
    const k = kyselyOver(fake.pool);
    await k.selectFrom('t').selectAll().where('id', '=', 7).execute();
    expect(fake.sent).toEqual([
      { via: 'read', sql: 'select * from "t" where "id" = $1', params: [7] },
    ]);
    expect(fake.connects).toEqual([]);
  });

  it('runs a write on a primary client and returns it', async () => {
    const fake = fakePool(() => result('INSERT', [], 1));
    const k = kyselyOver(fake.pool);
    const r = await k.insertInto('t').values({ id: 1, name: 'a' }).executeTakeFirst();
    expect(r.numInsertedOrUpdatedRows).toBe(1n);
    expect(fake.connects).toEqual(['write']);
    expect(fake.sent.map((s) => s.via)).toEqual(['client']);
    expect(fake.releases).toEqual([undefined]);
  });

  it('keeps a connection() on its pinned client after its first write', async () => {
    const fake = fakePool();
    const k = kyselyOver(fake.pool);
    await k.connection().execute(async (c) => {
      await c.selectFrom('t').selectAll().execute();
      await sql`SET search_path TO app`.execute(c);
      await c.selectFrom('t').selectAll().execute();
    });
    expect(fake.sent.map((s) => s.via)).toEqual(['read', 'client', 'client']);
    expect(fake.connects).toEqual(['write']);
    expect(fake.releases).toEqual([undefined]);
  });

  it('pins the primary for a transaction, with its settings', async () => {
    const fake = fakePool((text) => (text === 'commit' ? result('COMMIT') : result()));
    const k = kyselyOver(fake.pool);
    await k
      .transaction()
      .setIsolationLevel('serializable')
      .setAccessMode('read only')
      .execute(async (trx) => {
        await trx.selectFrom('t').selectAll().execute();
      });
    expect(fake.sent.map((s) => `${s.via}: ${s.sql}`)).toEqual([
      'client: start transaction isolation level serializable read only',
      'client: select * from "t"',
      'client: commit',
    ]);
    expect(fake.connects).toEqual(['write']);
    expect(fake.releases).toEqual([undefined]);
  });

  it('sends savepoints of a controlled transaction on the pinned client', async () => {
    const fake = fakePool((text) => (text === 'commit' ? result('COMMIT') : result()));
    const k = kyselyOver(fake.pool);
    const trx = await k.startTransaction().execute();
    const sp = await trx.savepoint('s"1').execute();
    await sp.rollbackToSavepoint('s"1').execute();
    await trx.commit().execute();
    expect(fake.sent.map((s) => s.sql)).toEqual([
      'begin',
      'savepoint "s""1"',
      'rollback to "s""1"',
      'commit',
    ]);
  });

  it('fails a COMMIT answered with ROLLBACK with AbortedTransactionError, without a ROLLBACK', async () => {
    const fake = fakePool((text) => (text === 'commit' ? result('ROLLBACK') : result()));
    const k = kyselyOver(fake.pool);
    await expect(k.transaction().execute(async () => 'done')).rejects.toMatchObject({
      name: 'AbortedTransactionError',
    });
    expect(fake.sent.map((s) => s.sql)).toEqual(['begin', 'commit']);
  });

  it('destroys the client when ROLLBACK fails', async () => {
    const fake = fakePool((text) =>
      text === 'rollback' ? new Error('connection lost') : result(),
    );
    const k = kyselyOver(fake.pool);
    await expect(
      k.transaction().execute(async () => {
        throw new Error('work failed');
      }),
    ).rejects.toThrow('connection lost');
    expect(fake.releases).toEqual([true]);
  });

  it('checks out again after a failed pin', async () => {
    const fake = fakePool();
    const k = kyselyOver(fake.pool);
    await k.connection().execute(async (c) => {
      fake.failNextConnect();
      await expect(sql`SET a.b = 1`.execute(c)).rejects.toThrow('connect refused');
      await sql`SET a.b = 1`.execute(c);
    });
    expect(fake.connects).toEqual(['write', 'write']);
    expect(fake.releases).toEqual([undefined]);
  });

  it('uses a custom isReplicaSafe', async () => {
    const fake = fakePool();
    const k = new Kysely<Database>({
      dialect: new ResilientDialect({ pool: fake.pool, isReplicaSafe: () => false }),
    });
    await k.selectFrom('t').selectAll().execute();
    expect(fake.sent.map((s) => s.via)).toEqual(['client']);
  });

  it('streams a read on a replica client held only for the stream', async () => {
    const fake = fakePool();
    const batches = [[{ id: 1 }, { id: 2 }], [{ id: 3 }], []];
    let closed = false;
    class FakeCursor {
      constructor(
        readonly text: string,
        readonly values: unknown[],
      ) {}
      submit(): void {}
      read(): Promise<unknown[]> {
        return Promise.resolve(batches.shift() ?? []);
      }
      close(): Promise<void> {
        closed = true;
        return Promise.resolve();
      }
    }
    const k = kyselyOver(fake.pool, { cursor: FakeCursor });
    const ids: number[] = [];
    for await (const row of k.selectFrom('t').select('id').stream(2)) ids.push(row.id);
    expect(ids).toEqual([1, 2, 3]);
    expect(closed).toBe(true);
    expect(fake.connects).toEqual(['read']);
    expect(fake.releases).toEqual([undefined]);
  });

  it('refuses to stream without a cursor, as PostgresDialect does', async () => {
    const k = kyselyOver(fakePool().pool);
    const stream = k.selectFrom('t').selectAll().stream();
    await expect(stream.next()).rejects.toThrow(/'cursor' is not present/);
  });
});

describe('transaction(kysely, db, fn)', () => {
  function fakeTransactionPool() {
    const sent: Array<{ sql: string; params: readonly unknown[] }> = [];
    const options: unknown[] = [];
    const pool: TransactionPool = {
      transaction: (async (
        fn: (tx: Transaction, info: { attempt: number }) => Promise<unknown>,
        opts?: unknown,
      ) => {
        options.push(opts);
        const tx = {
          attempt: 2,
          client: {} as PgClientLike,
          query: (text: string, values?: readonly unknown[]) => {
            sent.push({ sql: text, params: values ?? [] });
            return Promise.resolve(result('INSERT', [], 1));
          },
          transaction: (inner: (t: Transaction) => Promise<unknown>) => inner(tx as Transaction),
        };
        return fn(tx as unknown as Transaction, { attempt: 2 });
      }) as TransactionPool['transaction'],
    };
    return { pool, sent, options };
  }

  it('runs the queries through tx.query and passes the options on, without cursor', async () => {
    const fake = fakeTransactionPool();
    const k = kyselyOver(fakePool().pool);
    const out = await transaction(
      k,
      fake.pool,
      async (trx, { attempt, tx }) => {
        const r = await trx.insertInto('t').values({ id: 1, name: 'a' }).executeTakeFirst();
        return { attempt, rows: r.numInsertedOrUpdatedRows, hasTx: typeof tx.transaction };
      },
      { isolation: 'serializable', retries: 4, cursor: class {} as never },
    );
    expect(out).toEqual({ attempt: 2, rows: 1n, hasTx: 'function' });
    expect(fake.sent).toEqual([
      { sql: 'insert into "t" ("id", "name") values ($1, $2)', params: [1, 'a'] },
    ]);
    expect(fake.options).toEqual([{ isolation: 'serializable', retries: 4 }]);
  });

  it("keeps kysely's plugins", async () => {
    const fake = fakeTransactionPool();
    const k = kyselyOver(fakePool().pool).withSchema('app');
    await transaction(k, fake.pool, (trx) => trx.deleteFrom('t').execute());
    expect(fake.sent[0]?.sql).toBe('delete from "app"."t"');
  });

  it('refuses Kysely transactions inside, and names the savepoint way', async () => {
    const fake = fakeTransactionPool();
    const k = kyselyOver(fakePool().pool);
    await transaction(k, fake.pool, async (trx) => {
      expect(() => trx.transaction()).toThrow(/not supported/);
      await expect(trx.startTransaction().execute()).rejects.toThrow(/info\.tx\.transaction/);
    });
  });
});
