/**
 * The parts of pg.Pool's surface that its TypeScript type promises and ResilientPool now keeps,
 * on the real cluster: submittables through `query()` (pg's own `pg.Query` here; pg-cursor and
 * pg-query-stream are submittables too), `expiredCount`, and `done(err)` of `connect(callback)`.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PoolClosedError, ResilientPool } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 1 });
const open: ResilientPool<pg.Pool>[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 5_000 })));
});

function makeDb(options: { queryRouting?: 'auto' } = {}): ResilientPool<pg.Pool> {
  const db = new ResilientPool({
    primary: handle.cluster.primary.createPool({ max: 2 }),
    replicas: [handle.cluster.replicas[0]!.createPool({ max: 2 })],
    routing: { queryRouting: options.queryRouting ?? 'primary' },
    health: { enabled: false },
    logger: false,
  });
  open.push(db);
  return db;
}

/** The rows a pg.Query streams, or the error it emits. */
function drain(query: pg.Query): Promise<{ rows: unknown[] } | { error: Error }> {
  const rows: unknown[] = [];
  return new Promise((resolve) => {
    query.on('row', (row) => rows.push(row));
    query.on('end', () => resolve({ rows }));
    query.on('error', (error) => resolve({ error }));
  });
}

const allIdle = (db: ResilientPool<pg.Pool>) => () => db.idleCount === db.totalCount;

describe("pg.Pool's surface", () => {
  it('runs a submittable on a client of its own, returns it, and gives the client back', async () => {
    const db = makeDb();
    const query = new pg.Query(
      'SELECT n, pg_is_in_recovery() AS standby FROM generate_series(1, 3) n',
    );
    const returned = db.query(query);
    expect(returned).toBe(query);
    expect(await drain(query)).toEqual({
      rows: [1, 2, 3].map((n) => ({ n, standby: false })),
    });
    await until('the client to be back in its pool', allIdle(db));
    expect(db.stats().endpoints[0]?.inUse).toBe(0);
  });

  it("a submittable's own callback gets the result; with queryRouting 'auto' a read goes to a replica", async () => {
    const db = makeDb({ queryRouting: 'auto' });
    const result = await new Promise<pg.QueryResult>((resolve, reject) => {
      db.query(
        new pg.Query('SELECT pg_is_in_recovery() AS standby', (err, res) =>
          err ? reject(err) : resolve(res),
        ),
      );
    });
    expect(result.rows).toEqual([{ standby: true }]);
    await until('the client to be back in its pool', allIdle(db));
  });

  it('a submittable that fails in SQL reports it and its client stays usable', async () => {
    const db = makeDb();
    const outcome = await drain(db.query(new pg.Query('SELECT 1/0')));
    expect(outcome).toMatchObject({ error: { code: '22012' } });
    await until('the client to be back in its pool', allIdle(db));
    await expect(db.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
  });

  it('a submittable that cannot get a client hears why, as pg reports connection errors', async () => {
    const db = makeDb();
    await db.end();
    const outcome = await drain(db.query(new pg.Query('SELECT 1')));
    expect(outcome).toMatchObject({ error: expect.any(PoolClosedError) });
  });

  it("connect(callback)'s done(err) destroys the client, as pg's does", async () => {
    const db = makeDb();
    const pid = await new Promise<number>((resolve, reject) => {
      db.connect((err, client, done) => {
        if (err !== undefined || client === undefined) return reject(err);
        client.query('SELECT pg_backend_pid() AS pid').then((r) => {
          done(new Error('throw this connection away'));
          resolve(r.rows[0].pid);
        }, reject);
      });
    });
    await until('the destroyed client to leave the pool', () => db.totalCount === 0);
    const next = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(next.rows[0]?.pid).not.toBe(pid);
    expect(db.expiredCount).toBe(0);
  });
});
