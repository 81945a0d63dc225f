/**
 * resilient-pool/typeorm on a real primary with a streaming replica: TypeORM's postgres driver
 * over a ResilientPool, entities saved and read back, transactions atomic, TypeORM's reads on
 * the replica through its `replication` option.
 */
import 'reflect-metadata';
import { DataSource, EntitySchema } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, ResilientPool } from '../../src/index.js';
import { typeormDataSourceOptions } from '../../src/integrations/typeorm/index.js';
import { useCluster } from '../support/cluster.js';

interface Note {
  id: number;
  title: string;
}

const NoteEntity = new EntitySchema<Note>({
  name: 'Note',
  tableName: 'typeorm_notes',
  columns: {
    id: { type: 'int', primary: true, generated: 'increment' },
    title: { type: 'text' },
  },
});

const handle = useCluster({ replicas: 1 });
let db: ResilientPool;
const sources: DataSource[] = [];

function calls(role: 'primary' | 'replica'): number {
  return db
    .stats()
    .endpoints.filter((e) => e.role === role)
    .reduce((sum, e) => sum + e.calls, 0);
}

async function open(reads?: 'replica' | 'primary'): Promise<DataSource> {
  const dataSource = new DataSource({
    ...typeormDataSourceOptions(db, reads === undefined ? {} : { reads }),
    entities: [NoteEntity],
    synchronize: true,
  });
  sources.push(dataSource);
  return dataSource.initialize();
}

/** `pg_is_in_recovery()` on a query runner of the given TypeORM replication mode. */
async function onReplica(dataSource: DataSource, mode: 'master' | 'slave'): Promise<boolean> {
  const runner = dataSource.createQueryRunner(mode);
  try {
    const rows: Array<{ replica: boolean }> = await runner.query(
      'SELECT pg_is_in_recovery() AS replica',
    );
    return rows[0]!.replica;
  } finally {
    await runner.release();
  }
}

beforeAll(() => {
  db = new ResilientPool({
    primary: handle.cluster.primary.createPool({ max: 6 }),
    replicas: [handle.cluster.replicas[0]!.createPool({ max: 6 })],
    logger: false,
  });
});

afterAll(async () => {
  for (const source of sources) if (source.isInitialized) await source.destroy();
  await db?.end();
});

describe('typeormDataSourceOptions(db)', () => {
  it('saves an entity on the primary and reads it back from the replica', async () => {
    const dataSource = await open();
    const notes = dataSource.getRepository(NoteEntity);
    const saved = await notes.save({ title: 'first' });
    expect(saved.id).toBeGreaterThan(0);
    await handle.cluster.waitForReplication();

    const replicaCalls = calls('replica');
    const found = await notes.findOneBy({ id: saved.id });
    expect(found).toEqual({ id: saved.id, title: 'first' });
    const listed = await notes
      .createQueryBuilder('n')
      .where('n.id = :id', { id: saved.id })
      .getMany();
    expect(listed).toEqual([{ id: saved.id, title: 'first' }]);
    expect(calls('replica')).toBeGreaterThan(replicaCalls);

    expect(await onReplica(dataSource, 'slave')).toBe(true);
    expect(await onReplica(dataSource, 'master')).toBe(false);
    // dataSource.query() is TypeORM's master.
    const raw: Array<{ replica: boolean }> = await dataSource.query(
      'SELECT pg_is_in_recovery() AS replica',
    );
    expect(raw).toEqual([{ replica: false }]);
  });

  it('runs dataSource.transaction() atomically on the primary', async () => {
    const dataSource = await open();
    const committed = await dataSource.transaction(async (manager) => {
      const note = await manager.save(NoteEntity, { title: 'in a transaction' });
      const [{ replica, pid }] = await manager.query(
        'SELECT pg_is_in_recovery() AS replica, pg_backend_pid() AS pid',
      );
      const [again] = await manager.query('SELECT pg_backend_pid() AS pid');
      return { id: note.id, replica, samePid: pid === again.pid };
    });
    expect(committed.replica).toBe(false);
    expect(committed.samePid).toBe(true);

    await expect(
      dataSource.transaction(async (manager) => {
        await manager.save(NoteEntity, { title: 'rolled back' });
        throw new Error('abort the transaction');
      }),
    ).rejects.toThrow('abort the transaction');

    const titles = (await dataSource.manager.query('SELECT title FROM typeorm_notes')) as Array<{
      title: string;
    }>;
    expect(titles.map((r) => r.title)).toContain('in a transaction');
    expect(titles.map((r) => r.title)).not.toContain('rolled back');
  });

  it("with reads: 'primary' sends TypeORM's reads to the primary too", async () => {
    const dataSource = await open('primary');
    const replicaCalls = calls('replica');
    const notes = await dataSource.getRepository(NoteEntity).find();
    expect(notes.length).toBeGreaterThan(0);
    expect(await onReplica(dataSource, 'slave')).toBe(false);
    expect(calls('replica')).toBe(replicaCalls);
  });

  it('re-runs a serialization failure with the retry recipe', async () => {
    const dataSource = await open();
    await dataSource.query('CREATE TABLE typeorm_skew (class int NOT NULL, value int NOT NULL)');
    await dataSource.query('INSERT INTO typeorm_skew VALUES (1, 10), (2, 100)');

    // --- the recipe of docs/integrations.md ---------------------------------------------------
    async function withRetries<T>(work: () => Promise<T>, tries = 5): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        try {
          return await work();
        } catch (err) {
          // TypeORM's QueryFailedError carries pg's SQLSTATE: 40001, 40P01 and 55P03 are conflicts.
          if (attempt >= tries || classify(err) !== 'conflict') throw err;
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * 2 ** attempt));
        }
      }
    }
    // ------------------------------------------------------------------------------------------

    // Both first tries read before either writes: a write skew SERIALIZABLE refuses with 40001.
    let arrived = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tries = [0, 0];
    const skew = (reads: number, writes: number, slot: 0 | 1) =>
      withRetries(() =>
        dataSource.transaction('SERIALIZABLE', async (manager) => {
          const attempt = ++tries[slot]!;
          const [{ total }] = await manager.query(
            'SELECT sum(value)::int AS total FROM typeorm_skew WHERE class = $1',
            [reads],
          );
          if (attempt === 1) {
            if (++arrived === 2) release();
            await bothRead;
          }
          await manager.query('INSERT INTO typeorm_skew VALUES ($1, $2)', [writes, total]);
        }),
      );
    await Promise.all([skew(1, 2, 0), skew(2, 1, 1)]);
    expect(Math.max(...tries)).toBeGreaterThan(1);
    const [{ n }] = await dataSource.query('SELECT count(*)::int AS n FROM typeorm_skew');
    expect(n).toBe(4);
  });

  it('leaves the pool open when the DataSource is destroyed', async () => {
    const dataSource = await open();
    await dataSource.destroy();
    expect(db.ended).toBe(false);
    const { rows } = await db.write('SELECT count(*)::int AS n FROM typeorm_notes');
    expect(rows[0]?.n).toBeGreaterThan(0);
    // A DataSource can be initialized again over the same pool.
    await dataSource.initialize();
    expect(await dataSource.getRepository(NoteEntity).count()).toBeGreaterThan(0);
  });
});

describe('the snippet of docs/integrations.md', () => {
  // Runs last: the snippet ends the pool.
  it('runs as written', async () => {
    // The table exists before the application starts (made by a migration), on every node.
    await db.write('CREATE TABLE notes (id serial PRIMARY KEY, title text NOT NULL)');
    await handle.cluster.waitForReplication();
    // --- the snippet of docs/integrations.md -------------------------------------------------
    interface Note {
      id: number;
      title: string;
    }

    const Note = new EntitySchema<Note>({
      name: 'Note',
      tableName: 'notes',
      columns: {
        id: { type: 'int', primary: true, generated: 'increment' },
        title: { type: 'text' },
      },
    });

    const dataSource = new DataSource({
      ...typeormDataSourceOptions(db),
      entities: [Note],
      // migrations, logging, ... as usual
    });
    await dataSource.initialize();

    const notes = dataSource.getRepository(Note);
    const saved = await notes.save({ title: 'first' }); // the primary
    const found = await notes.findOneBy({ id: saved.id }); // a replica, which may lag

    await dataSource.transaction(async (manager) => {
      // One primary client; a throw rolls the whole transaction back.
      await manager.save(Note, { title: 'second' });
    });
    // ------------------------------------------------------------------------------------------
    expect(found === null || found.title === 'first').toBe(true);
    const { rows } = await db.write('SELECT title FROM notes ORDER BY id');
    expect(rows).toEqual([{ title: 'first' }, { title: 'second' }]);
    // --- the snippet, continued --------------------------------------------------------------
    await dataSource.destroy();
    await db.end(); // the DataSource borrowed the pool: end it yourself
    // ------------------------------------------------------------------------------------------
    expect(db.ended).toBe(true);
  });
});
