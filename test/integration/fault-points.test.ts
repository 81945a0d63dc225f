/**
 * Fault points: every public call of ResilientPool, with its connection cut at each stage of the
 * call by a protocol-aware proxy (test/support/stage-proxy.ts): while connecting, just after the
 * statement went out, in the middle of the rows, just after the reply, during COMMIT.
 *
 * Each cut is made twice, ending the client's side with a reset (RST) and with a close (FIN). A
 * plain pg.Pool survives all of these (it rejects the call with the socket's error; the control
 * cases check that the cuts are fair); so must ResilientPool (shared/DESIGN.md, "Never worse than
 * a bare pg.Pool"). For every cut:
 * - nothing reaches uncaughtException or unhandledRejection;
 * - the call settles within 10 s, with its result or with an Error whose `code` is a string;
 * - no client leaks: each wrapped pg.Pool has every client idle again and nobody waiting, and
 *   stats() shows nothing in flight or queued;
 * - nothing is applied twice: each call inserts one row with its own tag, counted afterwards on
 *   a connection of its own; at most 1, and exactly 1 when the call resolved.
 * Also: a cut before anything was sent is retried (the call resolves), a cut during COMMIT is
 * reported as E_OUTCOME_UNKNOWN, a read re-run elsewhere returns all of its rows, and the pool
 * serves the next call.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  classify,
  MemoryStore,
  type QueryResultLike,
  ResilientPool,
  type ResilientPoolOptions,
} from '../../src/index.js';
import type { ClusterNode } from '../../src/testing/index.js';
import { useCluster } from '../support/cluster.js';
import { type CutClose, type CutStage, StageProxy } from '../support/stage-proxy.js';

const handle = useCluster({ replicas: 1 });

/** A call still pending after this is reported as a hang. */
const SETTLE_BOUND_MS = 10_000;
/** How long the pools get to return to normal after the call settled. */
const RECOVER_BOUND_MS = 3_000;
/** Rows the write statement returns: more than one, so that 'mid-result' has a middle. */
const WRITE_ROWS = 2_000;
/** Rows of the replica read: enough that the result spans many TCP segments. */
const READ_ROWS = 50_000;

let primaryProxy: StageProxy;
let replicaProxy: StageProxy;

/**
 * Uncaught errors and unhandled rejections of the whole file, in order. Vitest reports them too
 * (and fails the run); recording them here lets each case say that it was the one that leaked.
 */
const uncaught: unknown[] = [];
const recordUncaught = (err: unknown) => {
  uncaught.push(err);
};

/**
 * One line per case: what each cut did to its call. Printed at the end when a case failed, since
 * the outcomes of the passing cases around it help to read the failure.
 */
const summary: string[] = [];
let failedCases = 0;

beforeAll(async () => {
  process.on('uncaughtException', recordUncaught);
  process.on('unhandledRejection', recordUncaught);
  primaryProxy = await StageProxy.start({ target: handle.cluster.primary });
  replicaProxy = await StageProxy.start({ target: handle.cluster.replicas[0]! });
  await admin((c) => c.query('CREATE TABLE IF NOT EXISTS t (id serial, tag text)'));
});

afterAll(async () => {
  process.off('uncaughtException', recordUncaught);
  process.off('unhandledRejection', recordUncaught);
  await Promise.all([primaryProxy?.close(), replicaProxy?.close()]);
  if (failedCases > 0) console.log(`fault points (outcome per case):\n${summary.join('\n')}`);
});

/** A raw connection straight to the primary (not through a proxy), for looking from outside. */
async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: handle.cluster.primary.url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function rowsTagged(tag: string): Promise<number> {
  const { rows } = await admin((c) =>
    c.query<{ n: number }>('SELECT count(*)::int AS n FROM t WHERE tag = $1', [tag]),
  );
  return rows[0]!.n;
}

/**
 * A pg.Pool on `node`, connecting through `proxy`. Deliberately without an 'error' listener of
 * its own, like an application's pool: the ResilientPool has to cope with what pg emits.
 */
function poolThrough(proxy: StageProxy, node: ClusterNode): pg.Pool {
  const url = new URL(node.url);
  return new pg.Pool({
    host: proxy.host,
    port: proxy.port,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.slice(1),
    max: 2,
  });
}

/** What one call gets: its statement (carrying the case's marker) and its row's tag. */
interface Fault {
  /** Unique to the case; appears in the statement text so only that statement is cut. */
  marker: string;
  /** Unique to the case; the value of the one row the call inserts. */
  tag: string;
  /** The statement with `$1` for the tag (writes) or no parameter (reads). */
  sql: string;
}

interface Method {
  name: string;
  /** 'write': inserts one tagged row on the primary; 'read': a long SELECT on the replica. */
  kind: 'write' | 'read';
  stages: readonly CutStage[];
  cache?: boolean;
  /** Makes the call; resolves with the statement's result. */
  call(db: ResilientPool, fault: Fault, calls: { callbacks: number }): Promise<QueryResultLike>;
}

const STATEMENT_STAGES = ['during-connect', 'after-send', 'mid-result', 'after-result'] as const;

const METHODS: readonly Method[] = [
  {
    name: 'query() promise',
    kind: 'write',
    stages: STATEMENT_STAGES,
    call: (db, f) => db.query(f.sql, [f.tag]),
  },
  {
    // No values: pg sends the callback form's statement with the simple protocol ('Q').
    name: 'query() callback',
    kind: 'write',
    stages: STATEMENT_STAGES,
    call: (db, f, calls) =>
      new Promise((resolve, reject) => {
        db.query(f.sql.replace('$1', `'${f.tag}'`), (err, result) => {
          calls.callbacks++;
          if (err) reject(err);
          else resolve(result!);
        });
      }),
  },
  {
    name: 'write()',
    kind: 'write',
    stages: STATEMENT_STAGES,
    call: (db, f) => db.write(f.sql, [f.tag]),
  },
  {
    name: 'write() with captureToken',
    kind: 'write',
    stages: STATEMENT_STAGES,
    call: (db, f) => db.write(f.sql, [f.tag], { captureToken: true }),
  },
  {
    name: 'transaction()',
    kind: 'write',
    stages: [...STATEMENT_STAGES, 'during-commit'],
    call: (db, f) => db.transaction((tx) => tx.query(f.sql, [f.tag])),
  },
  {
    // The usual application shape: release() in finally, without passing the error.
    name: 'connect() + client.query() + release()',
    kind: 'write',
    stages: STATEMENT_STAGES,
    call: async (db, f) => {
      const client = await db.connect();
      try {
        return (await client.query(f.sql, [f.tag])) as QueryResultLike;
      } finally {
        client.release();
      }
    },
  },
  {
    name: 'read() on a replica',
    kind: 'read',
    stages: STATEMENT_STAGES,
    call: (db, f) => db.read(f.sql),
  },
  {
    name: 'read() on a replica with cache',
    kind: 'read',
    stages: STATEMENT_STAGES,
    cache: true,
    call: (db, f) => db.read(f.sql, [], { cache: true }),
  },
];

type Outcome =
  | { status: 'resolved'; result: QueryResultLike }
  | { status: 'rejected'; error: unknown }
  | { status: 'hung' };

/** The call's outcome, or 'hung' if it has not settled within the bound. */
async function settleWithin(call: Promise<QueryResultLike>, ms: number): Promise<Outcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'hung' }), ms);
  });
  const settled = call.then(
    (result): Outcome => ({ status: 'resolved', result }),
    (error: unknown): Outcome => ({ status: 'rejected', error }),
  );
  try {
    return await Promise.race([settled, hung]);
  } finally {
    clearTimeout(timer);
  }
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return `a non-Error ${JSON.stringify(err)}`;
  const code = (err as { code?: unknown }).code;
  return `${err.name}${code === undefined ? '' : ` [${String(code)}]`}: ${err.message}`;
}

/** Every wrapped pool back to normal: nothing checked out or waiting, nothing in flight. */
function leaks(db: ResilientPool, pools: readonly pg.Pool[]): string[] {
  const found: string[] = [];
  for (const [i, pool] of pools.entries()) {
    if (pool.totalCount !== pool.idleCount || pool.waitingCount !== 0) {
      found.push(
        `pg.Pool #${i + 1} has clients out: total ${pool.totalCount}, idle ${pool.idleCount}, waiting ${pool.waitingCount}`,
      );
    }
  }
  for (const e of db.stats().endpoints) {
    if (e.inFlight !== 0 || e.queued !== 0) {
      found.push(`stats() of ${e.name}: inFlight ${e.inFlight}, queued ${e.queued}`);
    }
  }
  return found;
}

function checkResult(method: Method, result: QueryResultLike): string | undefined {
  const rows = result.rows as Array<Record<string, unknown>>;
  if (method.kind === 'write') {
    return rows.length === WRITE_ROWS
      ? undefined
      : `resolved with ${rows.length} rows instead of ${WRITE_ROWS}`;
  }
  if (rows.length !== READ_ROWS) return `resolved with ${rows.length} rows instead of ${READ_ROWS}`;
  const wrong = rows.findIndex((row, i) => row.g !== i + 1);
  return wrong === -1 ? undefined : `row ${wrong} is ${JSON.stringify(rows[wrong])}`;
}

let caseNumber = 0;

/** Runs one call with its connection cut at `stage`; returns every broken rule, in words. */
async function cutAndCheck(method: Method, stage: CutStage, close: CutClose): Promise<string[]> {
  const n = ++caseNumber;
  const marker = `fault-point-${n}`;
  const tag = `${marker}-${method.name.replace(/\W+/g, '-')}-${stage}-${close}`;
  const sql =
    method.kind === 'write'
      ? `WITH ins AS (INSERT INTO t (tag) VALUES ($1) RETURNING id) SELECT ins.id, g, '${marker}' AS fault_point FROM ins, generate_series(1, ${WRITE_ROWS}) AS g`
      : `SELECT g, '${marker}' AS fault_point FROM generate_series(1, ${READ_ROWS}) AS g`;
  const proxy = method.kind === 'write' ? primaryProxy : replicaProxy;
  const primary = poolThrough(primaryProxy, handle.cluster.primary);
  const pools = [primary];
  const options: ResilientPoolOptions = {
    primary,
    logger: false,
    retry: { retries: 3, minTimeout: 0, maxTimeout: 10 },
  };
  if (method.kind === 'read') {
    const replica = poolThrough(replicaProxy, handle.cluster.replicas[0]!);
    pools.push(replica);
    options.replicas = [{ pool: replica, name: 'replica' }];
    // The probe opens a connection of its own through the same proxy, which a 'during-connect'
    // arming (it cannot match a statement) could cut instead of ours. Statement stages match
    // the marker, so there the probe runs alongside as it would in production.
    options.health = { enabled: stage !== 'during-connect' };
  }
  if (method.cache === true) options.cache = { store: new MemoryStore(), ttl: 30_000 };
  const db = new ResilientPool(options);
  const problems: string[] = [];
  const cutsBefore = proxy.cuts.length;
  const uncaughtBefore = uncaught.length;
  const calls = { callbacks: 0 };
  let outcome: Outcome = { status: 'hung' };
  try {
    proxy.arm(stage, { match: marker, close });
    outcome = await settleWithin(method.call(db, { marker, tag, sql }, calls), SETTLE_BOUND_MS);
    proxy.disarm();

    const cut = proxy.cuts[cutsBefore];
    if (cut === undefined)
      problems.push(`the ${stage} cut never happened: the case tested nothing`);
    // Whatever the server was still doing for the cut connection (the statement, the COMMIT)
    // finishes before the rows are counted, so the count is final.
    if (cut !== undefined) await settleServer(cut.serverClosed);

    if (outcome.status === 'hung') {
      problems.push(`the call did not settle within ${SETTLE_BOUND_MS} ms (it hangs)`);
    } else if (outcome.status === 'rejected') {
      const { error } = outcome;
      // Typed: a code of its own, or a driver error the library classifies (pg reports a FIN
      // mid-statement as 'Connection terminated unexpectedly', with no code, as pg.Pool does).
      const typed =
        error instanceof Error &&
        (typeof (error as { code?: unknown }).code === 'string' || classify(error) !== 'permanent');
      if (!typed) {
        problems.push(`rejected with an unclassified error: ${describeError(error)}`);
      }
    } else {
      const wrong = checkResult(method, outcome.result);
      if (wrong !== undefined) problems.push(wrong);
    }
    if (stage === 'during-connect' && outcome.status !== 'resolved') {
      problems.push('a cut before anything was sent must be retried, but the call did not resolve');
    }
    if (stage === 'during-commit') {
      const code =
        outcome.status === 'rejected' ? (outcome.error as { code?: unknown }).code : undefined;
      if (code !== 'E_OUTCOME_UNKNOWN') {
        problems.push(
          `a cut during COMMIT must reject with E_OUTCOME_UNKNOWN, got ${show(outcome)}`,
        );
      }
    }

    // After-result cuts land when the call has already settled: give the pools time to notice
    // the dead connection and drop it, and late errors time to surface.
    let left = leaks(db, pools);
    const deadline = Date.now() + (outcome.status === 'hung' ? 0 : RECOVER_BOUND_MS);
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(25);
      left = leaks(db, pools);
    }
    await sleep(100);
    if (left.length === 0) left = leaks(db, pools);
    problems.push(...left.map((l) => `leak after the call settled: ${l}`));

    // Capacity is really back: with the dead connection gone, the next call is served.
    if (outcome.status !== 'hung') {
      const next = await settleWithin(
        method.kind === 'write' ? db.write('SELECT 1 AS ok') : db.read('SELECT 1 AS ok'),
        SETTLE_BOUND_MS,
      );
      if (next.status !== 'resolved') {
        problems.push(`after the cut the pool did not serve the next call: ${show(next)}`);
      }
    }

    if (method.name === 'query() callback' && outcome.status !== 'hung' && calls.callbacks !== 1) {
      problems.push(`the callback was called ${calls.callbacks} times instead of once`);
    }

    if (method.kind === 'write') {
      const rows = await rowsTagged(tag);
      if (rows > 1) problems.push(`applied ${rows} times: the statement was sent again`);
      if (outcome.status === 'resolved' && rows !== 1) {
        problems.push(`resolved, but ${rows} rows carry its tag instead of 1`);
      }
      summary.push(`  ${close} / ${method.name} / ${stage}: ${show(outcome)}; rows ${rows}`);
    } else {
      summary.push(`  ${close} / ${method.name} / ${stage}: ${show(outcome)}`);
    }
  } finally {
    proxy.disarm();
    await db.end({ timeout: 2_000 }).catch(() => {});
    await endPools(pools);
  }
  const mine = uncaught.slice(uncaughtBefore);
  for (const err of mine) problems.push(`uncaught: ${describeError(err)}`);
  return problems;
}

function show(outcome: Outcome): string {
  if (outcome.status === 'resolved') return `resolved (${outcome.result.rows.length} rows)`;
  if (outcome.status === 'rejected') return `rejected ${describeError(outcome.error)}`;
  return 'hung';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Ends pools the ResilientPool left open, bounded: pg's end() waits for every checked-out client,
 * and a client leaked by a failing case would make it wait forever.
 */
async function endPools(pools: readonly pg.Pool[]): Promise<void> {
  const ending = pools.filter((p) => !p.ended).map((p) => p.end().catch(() => {}));
  await Promise.race([Promise.all(ending), sleep(2_000)]);
}

/** Waits for the server to be done with a cut connection, bounded (the proxy closes it by 5 s). */
async function settleServer(closed: Promise<void>): Promise<void> {
  await Promise.race([closed, sleep(6_000)]);
}

/**
 * The same cut under a bare pg.Pool (with the 'error' listener pg's documentation asks for):
 * whatever it survives, ResilientPool must survive, so a failure above is ResilientPool's and
 * not an unfair cut. Its errors are not required to carry a code: pg's own
 * 'Connection terminated unexpectedly' has none.
 */
async function cutBarePool(stage: CutStage, close: CutClose): Promise<string[]> {
  const n = ++caseNumber;
  const marker = `fault-point-${n}`;
  const tag = `${marker}-bare-pg-pool-${stage}-${close}`;
  const pool = poolThrough(primaryProxy, handle.cluster.primary);
  pool.on('error', () => {});
  const problems: string[] = [];
  const cutsBefore = primaryProxy.cuts.length;
  const uncaughtBefore = uncaught.length;
  try {
    primaryProxy.arm(stage, { match: marker, close });
    const outcome = await settleWithin(
      pool.query(
        `WITH ins AS (INSERT INTO t (tag) VALUES ($1) RETURNING id) SELECT ins.id, g, '${marker}' AS fault_point FROM ins, generate_series(1, ${WRITE_ROWS}) AS g`,
        [tag],
      ),
      SETTLE_BOUND_MS,
    );
    primaryProxy.disarm();
    const cut = primaryProxy.cuts[cutsBefore];
    if (cut === undefined)
      problems.push(`the ${stage} cut never happened: the case tested nothing`);
    else await settleServer(cut.serverClosed);
    if (outcome.status === 'hung') problems.push(`did not settle within ${SETTLE_BOUND_MS} ms`);
    const deadline = Date.now() + RECOVER_BOUND_MS;
    while (pool.totalCount !== pool.idleCount && Date.now() < deadline) await sleep(25);
    await sleep(100);
    if (pool.totalCount !== pool.idleCount || pool.waitingCount !== 0) {
      problems.push(`clients out: total ${pool.totalCount}, idle ${pool.idleCount}`);
    }
    const rows = await rowsTagged(tag);
    if (rows > 1 || (outcome.status === 'resolved' && rows !== 1)) {
      problems.push(`${show(outcome)} with ${rows} rows`);
    }
    summary.push(`  ${close} / bare pg.Pool / ${stage}: ${show(outcome)}; rows ${rows}`);
  } finally {
    primaryProxy.disarm();
    await endPools([pool]);
  }
  for (const err of uncaught.slice(uncaughtBefore))
    problems.push(`uncaught: ${describeError(err)}`);
  return problems;
}

function recordFailure(problems: string[]): string[] {
  if (problems.length > 0) failedCases++;
  return problems;
}

/**
 * A lost connection reaches a client in one of two ways, and pg reports them differently: a reset
 * (RST) as ECONNRESET, an orderly close in mid-protocol (FIN) as 'Connection terminated
 * unexpectedly', without a code. Every case runs under both.
 */
const CLOSES: ReadonlyArray<{ close: CutClose; title: string }> = [
  { close: 'reset', title: 'connection reset (RST)' },
  { close: 'fin', title: 'connection closed (FIN)' },
];

for (const { close, title } of CLOSES) {
  describe(title, () => {
    describe('control: a bare pg.Pool', () => {
      for (const stage of STATEMENT_STAGES) {
        it(`survives a cut ${stage}: settles, no crash, no leak, applied at most once`, async () => {
          expect(recordFailure(await cutBarePool(stage, close))).toEqual([]);
        });
      }
    });

    for (const method of METHODS) {
      describe(method.name, () => {
        for (const stage of method.stages) {
          it(`cut ${stage}: settles with a result or a typed error, no crash, no leak, applied at most once`, async () => {
            expect(recordFailure(await cutAndCheck(method, stage, close))).toEqual([]);
          });
        }
      });
    }
  });
}
