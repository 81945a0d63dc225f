/**
 * Differential test on the real cluster: the same calls, with the same inputs, through a bare
 * pg.Pool and through ResilientPool's query(), write() and read() (without replicas, and with
 * one). "Never worse than a bare pg.Pool" (DESIGN.md): each call settles the way pg's does (the
 * same rows, rowCount and command, or an error of the same class, code and message), within a
 * bound, and leaves its pool usable. Every pool has one connection, so a client left checked out
 * shows up as a hang, and one left mid-protocol or in a failed transaction shows up in the next
 * call's answer.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';
import { type Outcome, rejected, resolved, within } from '../support/outcome.js';

/** Longest a call may take to settle; a local statement takes milliseconds. */
const SETTLE_MS = 5_000;

// Whatever a call does wrong, it must not reach the process as an uncaught error. Registered
// before useCluster: after-hooks run in reverse order, so the last check below comes after the
// cluster stopped, when a client left checked out without an 'error' listener would throw.
const escaped: unknown[] = [];
const onEscaped = (err: unknown) => escaped.push(err);
beforeAll(() => {
  process.on('uncaughtException', onEscaped);
  process.on('unhandledRejection', onEscaped);
});
afterAll(() => {
  process.off('uncaughtException', onEscaped);
  process.off('unhandledRejection', onEscaped);
  expect(escaped, 'uncaught exceptions and unhandled rejections after the last test').toEqual([]);
});

const handle = useCluster({ replicas: 1 });

type Args = unknown[];

/** How a call settled, plus what pg.Pool users can observe of the call itself. */
type CallOutcome = Outcome & {
  /** What the call returned: a promise, or (callback form) nothing. */
  returned: string;
  /** Times the callback was called (callback form): pg calls it exactly once. */
  callbacks?: number;
};

interface Case {
  name: string;
  /**
   * The calls, in order, on one fresh pool; every one's outcome is compared. A function, so each
   * pool gets its own values (a circular object, a throwing toPostgres).
   */
  calls: () => Args[];
  /** pg's callback form: a callback is passed as the last argument (query() only). */
  callback?: true;
  /** ResilientPool is documented to settle differently: why, and how it settles instead. */
  expectDifference?: { why: string; outcomes: CallOutcome[] };
}

function circular(): object {
  const value: Record<string, unknown> = { id: 1 };
  value.self = value;
  return value;
}

const throwingToPostgres = () => ({
  toPostgres(): string {
    throw new Error('toPostgres failed on purpose');
  },
});

const cases: Case[] = [
  // What works.
  { name: 'text', calls: () => [['SELECT 1 AS n']] },
  { name: 'text and values', calls: () => [['SELECT $1::int + 1 AS n', [41]]] },
  {
    name: 'QueryConfig { text, values }',
    calls: () => [[{ text: 'SELECT $1::text AS t', values: ['x'] }]],
  },
  {
    name: "QueryConfig with rowMode: 'array'",
    calls: () => [[{ text: 'SELECT $1::int AS a, 2 AS b', values: [1], rowMode: 'array' }]],
  },
  {
    name: 'named statement reused with the same text',
    calls: () => [
      [{ name: 'diff_same', text: 'SELECT $1::int AS n', values: [1] }],
      [{ name: 'diff_same', text: 'SELECT $1::int AS n', values: [2] }],
    ],
  },
  {
    name: 'two statements in one text (one result each)',
    calls: () => [['SELECT 1 AS a; SELECT 2 AS b']],
  },
  { name: 'empty text', calls: () => [['']] },
  { name: 'callback form (text, cb)', callback: true, calls: () => [['SELECT 1 AS n']] },
  {
    name: 'callback form (text, values, cb)',
    callback: true,
    calls: () => [['SELECT $1::int AS n', [7]]],
  },
  // Refused by pg before anything is sent.
  {
    name: 'named statement reused with another text',
    calls: () => [
      [{ name: 'diff_other', text: 'SELECT $1::int AS n', values: [1] }],
      [{ name: 'diff_other', text: 'SELECT $1::text AS t', values: ['x'] }],
    ],
  },
  { name: 'values not an array', calls: () => [['SELECT $1::text AS t', 'abc']] },
  { name: 'query({})', calls: () => [[{}]] },
  { name: 'query(undefined)', calls: () => [[undefined]] },
  { name: 'query(null)', calls: () => [[null]] },
  // pg.Pool takes a lone function for the callback and calls it back with an error.
  { name: 'query(callback) without text', callback: true, calls: () => [[]] },
  // Refused by pg while binding values: the statement's Parse may already be on the wire.
  { name: 'a BigInt inside a JSON value', calls: () => [['SELECT $1::jsonb AS j', [{ id: 10n }]]] },
  { name: 'a circular object as a value', calls: () => [['SELECT $1::jsonb AS j', [circular()]]] },
  {
    name: 'a value whose toPostgres throws',
    calls: () => [['SELECT $1::text AS t', [throwingToPostgres()]]],
  },
  // Refused by the server.
  { name: 'syntax error', calls: () => [['SELEC 1']] },
  {
    name: 'unique violation (23505)',
    calls: () => [['INSERT INTO differential_t (id) VALUES (1)']],
  },
  { name: 'division by zero', calls: () => [['SELECT 1/0 AS x']] },
  // The explicit transaction stays open and failed on the connection unless the pool cleans up.
  { name: 'BEGIN; SELECT 1/0 in one text', calls: () => [['BEGIN; SELECT 1/0']] },
  { name: 'callback form with an error', callback: true, calls: () => [['SELECT 1/0 AS x']] },
];

/** One pool under test, as a column of the table sees it. */
interface Subject {
  readonly counts: { totalCount: number; idleCount: number; waitingCount: number };
  /** Most clients the pool may hold (one per wrapped pool). */
  readonly maxClients: number;
  /** One call, with the arguments exactly as given. */
  call(...args: Args): unknown;
  /** Checks out a client of every endpoint the calls can reach, and gives it back. */
  checkout(): Promise<void>;
  end(): Promise<void>;
}

interface Column {
  name: string;
  /** Has pg's callback form (query() does; write() and read() take options instead). */
  callbacks: boolean;
  make(): Subject;
}

function pgPoolSubject(): Subject {
  const pool = handle.cluster.primary.createPool({ max: 1 });
  return {
    counts: pool,
    maxClients: 1,
    call: (...args) => Reflect.apply(pool.query, pool, args),
    checkout: async () => (await pool.connect()).release(),
    end: () => pool.end(),
  };
}

function resilientSubject(
  method: 'query' | 'write' | 'read',
  options: { replica?: boolean; routing?: ResilientPoolOptions['routing'] } = {},
): Subject {
  const { primary, replicas } = handle.cluster;
  const db = new ResilientPool({
    primary: primary.createPool({ max: 1 }),
    replicas: options.replica ? [replicas[0]!.createPool({ max: 1 })] : [],
    ...(options.routing ? { routing: options.routing } : {}),
    logger: false,
  });
  return {
    counts: db,
    maxClients: options.replica ? 2 : 1,
    call: (...args) => Reflect.apply(db[method], db, args),
    checkout: async () => {
      (await db.connect({ role: 'write' })).release();
      if (options.replica) (await db.connect({ role: 'read' })).release();
    },
    end: () => db.end({ timeout: 1_000 }),
  };
}

const columns: Column[] = [
  { name: 'query()', callbacks: true, make: () => resilientSubject('query') },
  { name: 'write()', callbacks: false, make: () => resilientSubject('write') },
  { name: 'read() without replicas', callbacks: false, make: () => resilientSubject('read') },
  {
    name: 'read() on a replica',
    callbacks: false,
    make: () => resilientSubject('read', { replica: true }),
  },
  {
    name: "query() with queryRouting 'auto' and a replica",
    callbacks: true,
    make: () => resilientSubject('query', { replica: true, routing: { queryRouting: 'auto' } }),
  },
];

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function returnedKind(value: unknown): string {
  return value instanceof Promise ? 'promise' : typeof value;
}

/** Makes one call and describes how it settled; a hang becomes a thrown DidNotSettleError. */
async function settle(
  subject: Subject,
  args: Args,
  callback: boolean,
  what: string,
): Promise<CallOutcome> {
  if (!callback) {
    let returned: unknown;
    try {
      returned = subject.call(...args);
    } catch (err) {
      return { ...rejected(err, 'threw'), returned: 'nothing (threw)' };
    }
    const outcome = await within(
      Promise.resolve(returned).then(resolved, (err: unknown) => rejected(err)),
      SETTLE_MS,
      what,
    );
    return { ...outcome, returned: returnedKind(returned) };
  }
  let callbacks = 0;
  let returned: unknown;
  const outcome = await within(
    new Promise<Outcome>((resolve) => {
      try {
        returned = subject.call(...args, (err: unknown, result: unknown) => {
          callbacks++;
          resolve(err ? rejected(err) : resolved(result));
        });
      } catch (err) {
        resolve(rejected(err, 'threw'));
      }
    }),
    SETTLE_MS,
    `${what} (its callback was never called)`,
  );
  // pg itself is called back twice after a bind error; the caller must hear of it once. The
  // second call, when there is one, comes with the next ReadyForQuery: milliseconds.
  await pause(50);
  return { ...outcome, returned: returnedKind(returned), callbacks };
}

async function runCase(subject: Subject, c: Case, label: string): Promise<CallOutcome[]> {
  const outcomes: CallOutcome[] = [];
  for (const [i, args] of c.calls().entries()) {
    outcomes.push(await settle(subject, args, c.callback === true, `${label}, call ${i + 1}`));
  }
  return outcomes;
}

/**
 * The pool is as good as new: nobody waits, the next statement gets its own answer (with one
 * connection, a poisoned client would hand it a stale result or a failed-transaction error),
 * a checkout succeeds, and every client is back and idle.
 */
async function expectUsable(subject: Subject, label: string): Promise<void> {
  expect(subject.counts.waitingCount, `${label}: callers waiting once the case settled`).toBe(0);
  const probe = await within(
    Promise.resolve(subject.call('SELECT 1 AS one')) as Promise<{ rows: unknown[] }>,
    SETTLE_MS,
    `${label}: SELECT 1 after the case`,
  );
  expect(probe.rows, `${label}: SELECT 1 after the case`).toEqual([{ one: 1 }]);
  await within(subject.checkout(), SETTLE_MS, `${label}: a checkout after the case`);
  const { totalCount, idleCount, waitingCount } = subject.counts;
  expect({ idleCount, waitingCount }, `${label}: counts after the case`).toEqual({
    idleCount: totalCount,
    waitingCount: 0,
  });
  expect(totalCount, `${label}: clients after the case`).toBeLessThanOrEqual(subject.maxClients);
}

const open: Subject[] = [];

beforeAll(async () => {
  const pool = handle.cluster.primary.createPool({ max: 1 });
  await pool.query('CREATE TABLE IF NOT EXISTS differential_t (id int PRIMARY KEY)');
  await pool.query('INSERT INTO differential_t (id) VALUES (1) ON CONFLICT DO NOTHING');
  await pool.end();
  // The replica columns read the table there.
  await handle.cluster.waitForReplication();
});

afterEach(async () => {
  // Bounded: a pool whose client leaked would wait for it forever.
  await Promise.all(
    open.splice(0).map((s) => within(s.end(), SETTLE_MS, 'end()').catch(() => undefined)),
  );
  expect(escaped.splice(0), 'uncaught exceptions and unhandled rejections').toEqual([]);
});

describe.each(columns)('ResilientPool $name settles like pg.Pool query()', (column) => {
  // write() and read() have no callback form: their third argument is options.
  const applicable = cases.filter((c) => column.callbacks || c.callback !== true);

  it.each(applicable)('$name', async (c) => {
    const reference = pgPoolSubject();
    const subject = column.make();
    open.push(reference, subject);

    const expected = await runCase(reference, c, 'pg.Pool');
    const actual = await runCase(subject, c, column.name);
    // Soft, so that a pool left unusable is reported too, not only the first difference.
    if (c.expectDifference === undefined) expect.soft(actual).toEqual(expected);
    else expect.soft(actual, c.expectDifference.why).toEqual(c.expectDifference.outcomes);

    await expectUsable(reference, 'pg.Pool');
    await expectUsable(subject, column.name);
  });
});
