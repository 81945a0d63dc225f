/**
 * Drizzle (`drizzle-orm/node-postgres`) over a ResilientPool: the transaction scenarios that
 * depend on Drizzle recognising the ResilientPool as a pool (it then runs each transaction on a
 * client checked out with `connect()`; otherwise it sends BEGIN, the statements and COMMIT
 * through `query()`, each on whichever connection is free).
 *
 * Shared by drizzle.test.ts, which runs them in process on the TypeScript source, and by
 * drizzle-bundle.test.ts, which bundles them with esbuild `--minify` (so that every class name is
 * mangled) and runs the bundle as a child process. Only drizzle-orm, pg and the ResilientPool
 * class it is given: no vitest, so it can be bundled.
 */
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';
import pg from 'pg';
import type { ResilientPool } from '../../src/index.js';

export const items = pgTable('drizzle_items', {
  id: serial('id').primaryKey(),
  batch: text('batch').notNull(),
  tag: text('tag').notNull(),
});

export const CREATE_ITEMS = `CREATE TABLE IF NOT EXISTS drizzle_items (
  id serial PRIMARY KEY, batch text NOT NULL, tag text NOT NULL)`;

/** How many transactions run at once in the concurrency scenario. */
export const CONCURRENT = 8;

export interface ScenarioReport {
  /** `ResilientPool.name` as the code that ran sees it (minified or not). */
  className: string;
  rollback: {
    /** The error the transaction rejected with. */
    rejected: string | undefined;
    /** Rows of the failed transaction found afterwards (0: rolled back). */
    rowsAfter: number;
  };
  savepoint: {
    /** Tags committed by an outer transaction whose nested one threw. */
    committed: string[];
  };
  concurrent: Array<{
    tag: string;
    /** Backend pid of every statement of the transaction: one value when pinned. */
    pids: number[];
    /** Tags of the batch the transaction saw while all of them were open. */
    saw: string[];
  }>;
  /** Tags of the concurrent batch found after every transaction committed. */
  committed: string[];
}

/** A barrier: `arrive()` resolves once `count` callers have arrived. */
function barrier(count: number): () => Promise<void> {
  let arrived = 0;
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return () => {
    arrived += 1;
    if (arrived === count) open();
    return opened;
  };
}

async function pid(run: (q: ReturnType<typeof sql>) => Promise<{ rows: unknown[] }>) {
  const { rows } = await run(sql`select pg_backend_pid() as pid`);
  return (rows[0] as { pid: number }).pid;
}

/**
 * Runs the scenarios on the server at `primaryUrl` through a ResilientPool made from `Pool`
 * (the class from src/ or from a minified bundle), and reports what it saw.
 */
export async function runDrizzleScenarios(
  Pool: typeof ResilientPool,
  primaryUrl: string,
  runId: string,
): Promise<ScenarioReport> {
  const primary = new pg.Pool({ connectionString: primaryUrl, max: CONCURRENT + 2 });
  primary.on('error', () => {});
  const db = new Pool({ primary, logger: false, health: { enabled: false } });
  const orm = drizzle({ client: db });
  try {
    await orm.execute(sql.raw(CREATE_ITEMS));

    // 1. A transaction that throws after its INSERT leaves nothing behind.
    const failedBatch = `${runId}-rollback`;
    let rejected: string | undefined;
    try {
      await orm.transaction(async (tx) => {
        await tx.insert(items).values({ batch: failedBatch, tag: 'lost' });
        throw new Error('abort the transaction');
      });
    } catch (err) {
      rejected = (err as Error).message;
    }
    const left = await orm.select().from(items).where(eq(items.batch, failedBatch));

    // 2. A nested transaction (a savepoint) that throws is rolled back alone.
    const savepointBatch = `${runId}-savepoint`;
    await orm.transaction(async (tx) => {
      await tx.insert(items).values({ batch: savepointBatch, tag: 'outer' });
      await tx
        .transaction(async (inner) => {
          await inner.insert(items).values({ batch: savepointBatch, tag: 'inner' });
          throw new Error('abort the savepoint');
        })
        .catch(() => {});
    });
    const kept = await orm.select().from(items).where(eq(items.batch, savepointBatch));

    // 3. Concurrent transactions: all have inserted before any looks, and all have looked
    // before any commits, so each sees only its own row (the others are uncommitted), and
    // every statement of one runs on one backend.
    const batch = `${runId}-concurrent`;
    const allInserted = barrier(CONCURRENT);
    const allLooked = barrier(CONCURRENT);
    const concurrent = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) =>
        orm.transaction(async (tx) => {
          const tag = `t${i}`;
          const pids = [await pid((q) => tx.execute(q))];
          await tx.insert(items).values({ batch, tag });
          pids.push(await pid((q) => tx.execute(q)));
          await allInserted();
          const seen = await tx
            .select({ tag: items.tag })
            .from(items)
            .where(eq(items.batch, batch))
            .orderBy(items.tag);
          pids.push(await pid((q) => tx.execute(q)));
          await allLooked();
          return { tag, pids, saw: seen.map((r) => r.tag) };
        }),
      ),
    );
    const committed = await orm
      .select({ tag: items.tag })
      .from(items)
      .where(eq(items.batch, batch))
      .orderBy(items.tag);

    return {
      className: Pool.name,
      rollback: { rejected, rowsAfter: left.length },
      savepoint: { committed: kept.map((r) => r.tag) },
      concurrent,
      committed: committed.map((r) => r.tag),
    };
  } finally {
    await db.end();
  }
}
