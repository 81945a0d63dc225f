/**
 * Hardening (issue 9): values pg cannot bind and calls pg cannot even queue, on the real cluster.
 * "Never worse than a bare pg.Pool" (DESIGN.md): each call rejects the way pg.Pool's does (the
 * same error class and message), at once, applies nothing, and leaves the pool usable. Every pool
 * has one connection (`max: 1`), so a client left checked out, mid-protocol or destroyed without
 * being replaced shows up as the next call hanging or failing.
 *
 * - Bind-time errors: a BigInt inside a jsonb value, a circular object, a `toPostgres()` that
 *   throws; through query(), write(), read() (on the primary and on a replica) and a client of
 *   connect().
 * - Malformed calls: values that are not an array, a QueryConfig with no text, `query(undefined)`,
 *   a named statement reused with another text.
 */
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';
import { bounded, guardEachTest } from '../support/guards.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 1 });

/** Longest a call may take to settle: these are all refused before or at the first round trip. */
const SETTLE_MS = 5_000;

// ---- guards shared by every test of the file -------------------------------------------------

const open: ResilientPool[] = [];
const barePools: pg.Pool[] = [];

guardEachTest(() =>
  Promise.all([
    ...open.splice(0).map((db) => db.end({ timeout: 2_000 })),
    ...barePools.splice(0).map((p) => p.end().catch(() => {})),
  ]),
);

/** How a call settled, as data `toEqual` can compare between pg.Pool and ResilientPool. */
type Outcome =
  | { settled: 'resolved'; rows: unknown[] }
  | { settled: 'threw' | 'rejected'; class: string; message: string };

/**
 * Runs `call` and reports how it settled; a synchronous throw is reported as such (it would break
 * a caller's `.catch()`), and a call still pending after SETTLE_MS fails the test.
 */
async function outcomeOf(what: string, call: () => Promise<unknown>): Promise<Outcome> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (err) {
    return { settled: 'threw', ...describe_(err) };
  }
  try {
    const value = await bounded(promise, SETTLE_MS, what);
    return { settled: 'resolved', rows: (value as { rows?: unknown[] }).rows ?? [] };
  } catch (err) {
    if (err instanceof Error && err.message.includes('did not settle within')) throw err;
    return { settled: 'rejected', ...describe_(err) };
  }
}

function describe_(err: unknown): { class: string; message: string } {
  return err instanceof Error
    ? { class: err.constructor.name, message: err.message }
    : { class: typeof err, message: String(err) };
}

function primaryPool(): pg.Pool {
  return handle.cluster.primary.createPool({ max: 1 });
}

/** A bare pg.Pool of one connection to the primary: the reference behaviour. */
function bare(): pg.Pool {
  const pool = primaryPool();
  barePools.push(pool);
  return pool;
}

function track(options: Partial<ResilientPoolOptions> = {}): {
  db: ResilientPool;
  pools: pg.Pool[];
} {
  const primary = primaryPool();
  const replicas = (options.replicas ?? []) as pg.Pool[];
  const db = new ResilientPool({ primary, logger: false, ...options });
  open.push(db);
  return { db, pools: [primary, ...replicas] };
}

/** Every wrapped pool has its clients idle and nobody waiting; nothing in flight or queued. */
async function expectQuiet(db: ResilientPool, pools: readonly pg.Pool[]): Promise<void> {
  await until(
    'every client back in its pool and nothing in flight',
    () =>
      pools.every((p) => p.waitingCount === 0 && p.idleCount === p.totalCount) &&
      db.stats().endpoints.every((e) => e.inFlight === 0 && e.queued === 0),
    { timeoutMs: SETTLE_MS },
  );
}

/** The pool still serves calls, on its one connection: nothing was left checked out or broken. */
async function expectUsable(
  db: ResilientPool | pg.Pool,
  via: 'query' | 'read' | 'write' = 'query',
): Promise<void> {
  const run = (): Promise<unknown> => {
    if (!(db instanceof ResilientPool)) return db.query('SELECT 1 AS one');
    return via === 'query' ? db.query('SELECT 1 AS one') : db[via]('SELECT 1 AS one');
  };
  for (let i = 0; i < 2; i++) {
    expect(await outcomeOf(`SELECT 1 after the bad call (${via})`, run)).toEqual({
      settled: 'resolved',
      rows: [{ one: 1 }],
    });
  }
}

// ---- bind-time errors ------------------------------------------------------------------------

const INSERT = 'INSERT INTO hard_bind (tag, data) VALUES ($1, $2)';

const badValues: Array<{ name: string; value: () => unknown }> = [
  { name: 'a BigInt inside a jsonb value', value: () => ({ id: 10n }) },
  {
    name: 'a circular object',
    value: () => {
      const v: Record<string, unknown> = { id: 1 };
      v.self = v;
      return v;
    },
  },
  {
    name: 'an object whose toPostgres() throws',
    value: () => ({
      toPostgres(): string {
        throw new Error('toPostgres failed on purpose');
      },
    }),
  },
];

let tagSeq = 0;
const nextTag = () => `hard_bind_${process.pid}_${++tagSeq}`;

async function rowsTagged(tag: string): Promise<number> {
  const pool = bare();
  const { rows } = await bounded(
    pool.query<{ n: number }>('SELECT count(*)::int AS n FROM hard_bind WHERE tag = $1', [tag]),
    SETTLE_MS,
    'counting rows',
  );
  return rows[0]!.n;
}

describe('bind-time errors settle as with pg.Pool, apply nothing, and leave the pool usable', () => {
  beforeAll(async () => {
    const pool = handle.cluster.primary.createPool({ max: 1 });
    try {
      await pool.query('CREATE TABLE IF NOT EXISTS hard_bind (id serial, tag text, data jsonb)');
    } finally {
      await pool.end();
    }
  });

  for (const bad of badValues) {
    describe(bad.name, () => {
      it('write() and query(): the same error as pg.Pool, nothing inserted', async () => {
        const reference = bare();
        const refTag = nextTag();
        const expected = await outcomeOf('pg.Pool.query', () =>
          reference.query(INSERT, [refTag, bad.value()]),
        );
        expect(expected.settled).toBe('rejected');
        if (bad.name.startsWith('a BigInt')) {
          expect(expected).toMatchObject({ class: 'TypeError' });
        }
        await expectUsable(reference);

        for (const via of ['write', 'query'] as const) {
          const { db, pools } = track();
          const tag = nextTag();
          // Not db[via](...): query()'s pg.Pool overloads (submittables, row arrays) cannot be
          // called through a union with write().
          const outcome = await outcomeOf(`${via}() with ${bad.name}`, () =>
            via === 'write'
              ? db.write(INSERT, [tag, bad.value()])
              : db.query(INSERT, [tag, bad.value()]),
          );
          expect(outcome, `${via}()`).toEqual(expected);
          await expectQuiet(db, pools);
          await expectUsable(db, via === 'write' ? 'write' : 'query');
          expect(await rowsTagged(tag), `rows inserted by ${via}()`).toBe(0);
        }
      });

      it('read(), on the primary and on a replica: the same error as pg.Pool', async () => {
        const reference = bare();
        const expected = await outcomeOf('pg.Pool.query', () =>
          reference.query('SELECT $1::jsonb AS v', [bad.value()]),
        );
        expect(expected.settled).toBe('rejected');

        const lone = track();
        expect(
          await outcomeOf(`read() with ${bad.name}`, () =>
            lone.db.read('SELECT $1::jsonb AS v', [bad.value()]),
          ),
        ).toEqual(expected);
        await expectQuiet(lone.db, lone.pools);
        await expectUsable(lone.db, 'read');

        const withReplica = track({
          replicas: [handle.cluster.replicas[0]!.createPool({ max: 1 })],
        });
        expect(
          await outcomeOf(`read() on a replica with ${bad.name}`, () =>
            withReplica.db.read('SELECT $1::jsonb AS v', [bad.value()]),
          ),
        ).toEqual(expected);
        await expectQuiet(withReplica.db, withReplica.pools);
        await expectUsable(withReplica.db, 'read');
      });

      it('a client from connect(): the same error as a pg.Pool client, and the client goes on', async () => {
        const session = async (pool: { connect(): Promise<pg.PoolClient> }, tag: string) => {
          const client = await bounded(pool.connect(), SETTLE_MS, 'connect()');
          try {
            const failed = await outcomeOf('client.query with the bad value', () =>
              client.query(INSERT, [tag, bad.value()]),
            );
            // The same client, as pg.Pool's clients do, still answers the next statement.
            const next = await outcomeOf('the same client afterwards', () =>
              client.query('SELECT 1 AS one'),
            );
            return { failed, next };
          } finally {
            client.release();
          }
        };
        const expected = await session(bare(), nextTag());
        expect(expected.failed.settled).toBe('rejected');
        expect(expected.next).toEqual({ settled: 'resolved', rows: [{ one: 1 }] });

        const { db, pools } = track();
        const tag = nextTag();
        expect(await session(db as unknown as pg.Pool, tag)).toEqual(expected);
        await expectQuiet(db, pools);
        await expectUsable(db);
        expect(await rowsTagged(tag), 'rows inserted through the client').toBe(0);
      });
    });
  }
});

// ---- malformed calls -------------------------------------------------------------------------

interface Malformed {
  name: string;
  /** Calls made in order on one pool; the last one is the malformed one. */
  calls: Array<{ via: 'query' | 'read'; args: unknown[] }>;
}

const malformed: Malformed[] = [
  {
    name: "read('SELECT $1::text', 'abc'): values not an array",
    calls: [{ via: 'read', args: ['SELECT $1::text AS t', 'abc'] }],
  },
  { name: 'query({}): a QueryConfig with no text', calls: [{ via: 'query', args: [{}] }] },
  { name: 'query(undefined)', calls: [{ via: 'query', args: [undefined] }] },
  {
    name: 'a named statement reused with another text',
    calls: [
      { via: 'query', args: [{ name: 'hard_named', text: 'SELECT 1 AS n' }] },
      { via: 'query', args: [{ name: 'hard_named', text: 'SELECT 2 AS n' }] },
    ],
  },
];

type Callable = (...args: unknown[]) => Promise<unknown>;

describe('malformed calls settle at once as with pg.Pool and free everything', () => {
  for (const c of malformed) {
    it(c.name, async () => {
      const reference = bare();
      const expected: Outcome[] = [];
      for (const call of c.calls) {
        // pg.Pool has no read(): its query() is the reference for both.
        const query = reference.query.bind(reference) as unknown as Callable;
        expected.push(await outcomeOf(`pg.Pool.query(${c.name})`, () => query(...call.args)));
      }
      expect(expected.at(-1)?.settled).toBe('rejected');
      await expectUsable(reference);

      const setups = [
        { label: 'a lone primary', options: {} },
        {
          label: 'a primary and a replica',
          options: { replicas: [handle.cluster.replicas[0]!.createPool({ max: 1 })] },
        },
      ];
      for (const setup of setups) {
        const { db, pools } = track(setup.options);
        const got: Outcome[] = [];
        for (const call of c.calls) {
          const method = db[call.via].bind(db) as unknown as Callable;
          got.push(
            await outcomeOf(`${call.via}(${c.name}) with ${setup.label}`, () =>
              method(...call.args),
            ),
          );
        }
        expect(got, setup.label).toEqual(expected);
        await expectQuiet(db, pools);
        for (const via of ['query', 'read', 'write'] as const) await expectUsable(db, via);
      }
    });
  }
});
