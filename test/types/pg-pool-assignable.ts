/**
 * Type-level tests: this file only has to typecheck (`npx tsc --noEmit -p .`); nothing runs it.
 * A ResilientPool over pg.Pools is a `pg.Pool` as far as TypeScript is concerned: it can be
 * passed where one is expected (Drizzle's `NodePgClient`, Kysely's PostgresPool, a function of
 * the application), without a cast. `@ts-expect-error` lines pin what must stay an error.
 */
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { withReplicas } from 'drizzle-orm/pg-core';
import { PostgresDialect } from 'kysely';
import pg from 'pg';
import {
  type PgClientLike,
  type PgPoolLike,
  ResilientPool,
  type ResilientPoolOptions,
} from '../../src/index.js';

declare const primary: pg.Pool;
declare const replica: pg.Pool;
declare const otherPool: PgPoolLike;

const db = new ResilientPool({
  primary,
  replicas: [replica, { pool: replica, name: 'r2', weight: 2 }],
  logger: false,
});

// ---- assignable to pg.Pool ----------------------------------------------------------------------
export const asPool: pg.Pool = db;
function takesPool(pool: pg.Pool): number {
  return pool.totalCount + pool.idleCount + pool.waitingCount + pool.expiredCount;
}
takesPool(db);
// With primary candidates, too.
export const withCandidates: pg.Pool = new ResilientPool({
  primary: [primary, { pool: replica, name: 'node-2' }],
});
// A ResilientPool over pools that are not pg.Pools is not one either.
// @ts-expect-error its clients are PgClientLike, not pg.PoolClient
export const notAPool: pg.Pool = new ResilientPool({ primary: otherPool });
// Options spread from a Partial<ResilientPoolOptions> still give a usable ResilientPool.
declare const partial: Partial<ResilientPoolOptions>;
export const spread = new ResilientPool({ primary, ...partial });
export const spreadClient: Promise<PgClientLike> = spread.connect();

// ---- Drizzle ------------------------------------------------------------------------------------
export const d1: NodePgDatabase = drizzle({ client: db });
export const d2: NodePgDatabase = drizzle(db);
export const clientBack: ResilientPool<pg.Pool> = drizzle({ client: db }).$client;
export const replicated = withReplicas(drizzle({ client: db }), [
  drizzle({ client: new ResilientPool({ primary: replica }) }),
]);

// ---- Kysely -------------------------------------------------------------------------------------
export const dialect = new PostgresDialect({ pool: db });

// ---- the pg.Pool surface, typed as pg's ---------------------------------------------------------
export async function surface(): Promise<void> {
  const client: pg.PoolClient = await db.connect();
  client.release();
  const read: pg.PoolClient = await db.connect({ role: 'read', timeout: 1_000 });
  read.release(true);
  db.connect((err: Error | undefined, c: pg.PoolClient | undefined, done) => {
    if (err === undefined && c !== undefined) done();
  });

  const result: pg.QueryResult<{ n: number }> = await db.query<{ n: number }>('SELECT 1 AS n');
  const n: number | undefined = result.rows[0]?.n;
  const oid: number = result.oid;
  const field: pg.FieldDef | undefined = result.fields[0];
  await db.query({ text: 'SELECT $1::int', values: [1], name: 'one' });
  const arrays = await db.query<[number, string]>({ text: 'SELECT 1, $1', rowMode: 'array' }, [
    'x',
  ]);
  const first: [number, string] | undefined = arrays.rows[0];
  const submitted: pg.Query = db.query(new pg.Query('SELECT 1'));
  db.query('SELECT 1', (err, res) => {
    if (err === null) res?.rows;
  });
  db.query('SELECT $1', [1], () => {});
  const options: pg.PoolOptions = db.options;
  const ending: boolean = db.ending || db.ended;
  void [n, oid, field, first, submitted, options, ending];
  await db.end();
}

// ---- events: pg-pool's, with the endpoint's name, and ours --------------------------------------
db.on('connect', (client, endpoint) => {
  const c: pg.PoolClient = client;
  const name: string = endpoint;
  void c.query(`SET application_name = '${name}'`);
});
db.on('connect', (client) => client.query('SET search_path TO app'));
db.on('acquire', (client: pg.PoolClient) => void client);
db.on('release', (err, client, endpoint) => {
  const e: Error | boolean | undefined = err;
  void [e, client.escapeIdentifier('t'), endpoint];
});
db.on('remove', (client: pg.PoolClient, endpoint: string) => void [client, endpoint]);
db.on('error', (err, client, endpoint) => {
  const tagged: string | undefined = err.endpoint;
  void [tagged, client, endpoint];
});
db.on('error', (err: Error) => void err);
db.once('connect', () => {});
db.off('connect', () => {});
db.on('breaker', ({ endpoint, state, previous }) => void [endpoint, state, previous]);
db.once('retry', ({ attempt, delayMs }) => void [attempt, delayMs]);
// A listener written for pg.Pool works unchanged.
const pgListener = (client: pg.PoolClient): void => void client;
db.on('connect', pgListener);
asPool.on('connect', pgListener);

// @ts-expect-error not an event of ResilientPool
db.on('nope', () => {});
// @ts-expect-error 'breaker' carries one payload object, not a client
db.on('breaker', (client: pg.PoolClient) => void client);
// @ts-expect-error the client is a pg.PoolClient, not a string
db.on('connect', (client: string) => void client);
