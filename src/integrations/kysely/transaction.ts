/**
 * `transaction(kysely, db, fn)`: Kysely queries inside `db.transaction()`, so the whole of `fn`
 * is re-run on a serialization failure or deadlock (40001, 40P01, 55P03), never re-run once
 * COMMIT may have happened, and the commit's consistency token recorded in a `db.session()`.
 * Kysely's own `kysely.transaction()` sends BEGIN and COMMIT itself and re-runs nothing.
 */
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type Kysely,
  Transaction as KyselyTransaction,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  SingleConnectionProvider,
} from 'kysely';
import type { ResilientPool } from '../../pool/resilient-pool.js';
import type { Transaction, TransactionOptions } from '../../pool/transaction.js';
import { type CursorConstructor, checkStream, streamRows, toKyselyResult } from './result.js';

/** What `transaction()` needs from a ResilientPool. */
export type TransactionPool = Pick<ResilientPool, 'transaction'>;

export interface KyselyTransactionOptions extends TransactionOptions {
  /**
   * pg-cursor's `Cursor` class, for `.stream()` inside the transaction.
   * @default undefined (streaming throws)
   */
  cursor?: CursorConstructor;
}

/** What `fn` learns about the try it is in. */
export interface KyselyTransactionAttempt {
  /** 1 for the first try, 2 for the first re-run, ... */
  attempt: number;
  /**
   * The pool's transaction handle: `tx.transaction(fn)` runs `fn` in a SAVEPOINT (the Kysely
   * transaction keeps working inside it), `tx.client` is the pinned pg client.
   */
  tx: Transaction;
}

/** Every statement goes through `tx.query`, so a swallowed error still fails the COMMIT. */
class TransactionConnection implements DatabaseConnection {
  constructor(
    private readonly tx: Transaction,
    private readonly cursor: CursorConstructor | undefined,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return toKyselyResult<R>(await this.tx.query(query.sql, query.parameters));
  }

  async *streamQuery<R>(
    query: CompiledQuery,
    chunkSize?: number,
  ): AsyncIterableIterator<QueryResult<R>> {
    const { cursor } = this;
    checkStream(cursor, chunkSize);
    const { client } = this.tx;
    yield* streamRows<R>((s) => client.query(s), cursor, query.sql, query.parameters, chunkSize!);
  }
}

const NESTED =
  'resilient-pool/kysely transaction(): the pool runs this transaction; for a savepoint use ' +
  'info.tx.transaction(async () => { ... })';

function refuse(): Promise<never> {
  return Promise.reject(new Error(NESTED));
}

/** Stands in for a driver the bound Transaction never needs; what would need one is refused. */
const NO_DRIVER: Driver = {
  init: refuse,
  acquireConnection: refuse,
  beginTransaction: refuse,
  commitTransaction: refuse,
  rollbackTransaction: refuse,
  releaseConnection: refuse,
  destroy: refuse,
};

const DIALECT = {
  createAdapter: () => new PostgresAdapter(),
  createDriver: () => NO_DRIVER,
  createQueryCompiler: () => new PostgresQueryCompiler(),
  createIntrospector: (db: Kysely<unknown>) => new PostgresIntrospector(db),
};

/**
 * Runs `fn` with a Kysely transaction bound to one `db.transaction()` try: BEGIN and COMMIT are
 * the pool's, so on 40001/40P01/55P03 the whole of `fn` is re-run (`info.attempt` says which
 * try), a lost connection during COMMIT rejects with TransactionOutcomeUnknownError, and a
 * throw rolls back. `trx` keeps `kysely`'s plugins and compiles as it does; the query log of
 * `kysely`'s `log` option does not see its statements.
 *
 * @example
 * import { transaction } from 'resilient-pool/kysely';
 *
 * await transaction(kysely, db, async (trx) => {
 *   const row = await trx.selectFrom('accounts').select('balance').where('id', '=', 1)
 *     .executeTakeFirstOrThrow();
 *   await trx.updateTable('accounts').set({ balance: row.balance - 10 })
 *     .where('id', '=', 1).execute();
 * }, { isolation: 'serializable', retries: 5 });
 */
export function transaction<DB, T>(
  kysely: Kysely<DB>,
  db: TransactionPool,
  fn: (trx: KyselyTransaction<DB>, info: KyselyTransactionAttempt) => Promise<T>,
  options: KyselyTransactionOptions = {},
): Promise<T> {
  const { cursor, ...transactionOptions } = options;
  const executor = kysely.getExecutor();
  return db.transaction((tx, { attempt }) => {
    const connection = new TransactionConnection(tx, cursor);
    const trx = new KyselyTransaction<DB>({
      config: { dialect: DIALECT },
      dialect: DIALECT,
      driver: NO_DRIVER,
      executor: executor.withConnectionProvider(new SingleConnectionProvider(connection)),
    });
    return fn(trx, { attempt, tx });
  }, transactionOptions);
}
