/**
 * A Kysely dialect over a ResilientPool with read/write routing: plain selects to replicas
 * through `db.read()`, everything else, and transactions, to the primary (see connection.ts).
 * The SQL is PostgreSQL's: Kysely's own adapter, query compiler and introspector are reused.
 */
import * as kyselyModule from 'kysely';
import {
  CompiledQuery,
  type CompiledQuery as CompiledQueryType,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type TransactionSettings,
} from 'kysely';
import { SqlClassifier } from '../../routing/classify-sql.js';
import { type KyselyPool, RoutingConnection, type RoutingSettings } from './connection.js';
import type { CursorConstructor } from './result.js';
import { replicaSafe } from './routing.js';

export interface ResilientDialectConfig {
  /** The ResilientPool. Kysely's `destroy()` ends it, as PostgresDialect ends its pool. */
  pool: KyselyPool;
  /**
   * Decides whether a query outside a transaction may go to a replica (through `db.read()`).
   * `() => false` sends everything to the primary.
   * @default isReplicaSafeQuery: a Kysely select without row locks that the library's SQL
   * classifier calls a plain read
   */
  isReplicaSafe?: (query: CompiledQueryType) => boolean;
  /**
   * pg-cursor's `Cursor` class, for `.stream()`, as in Kysely's PostgresDialect.
   * @default undefined (streaming throws)
   */
  cursor?: CursorConstructor;
}

/**
 * Kysely's error for a COMMIT answered with ROLLBACK, on which its transaction() skips the
 * ROLLBACK; looked up rather than imported, so Kysely releases without it still load this file.
 */
const AbortedTransaction: new () => Error =
  (kyselyModule as { AbortedTransactionError?: new () => Error }).AbortedTransactionError ??
  class extends Error {
    constructor() {
      super('Transaction was rolled back instead of committed');
      this.name = 'AbortedTransactionError';
    }
  };

/** `'name'` quoted as an identifier, as Kysely's savepoint commands quote it. */
function identifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function asRouting(connection: DatabaseConnection): RoutingConnection {
  if (connection instanceof RoutingConnection) return connection;
  throw new Error('resilient-pool/kysely: a connection of another driver was passed in');
}

class ResilientDriver implements Driver {
  private readonly settings: RoutingSettings;

  constructor(private readonly config: ResilientDialectConfig) {
    const custom = config.isReplicaSafe;
    const classifier = new SqlClassifier();
    const classify = (sql: string) => classifier.classify(sql);
    this.settings = {
      cursor: config.cursor,
      isRead: custom ?? ((query) => replicaSafe(query, classify)),
    };
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    // Lazy: a lone read checks nothing out here; see RoutingConnection.
    return new RoutingConnection(this.config.pool, this.settings);
  }

  async beginTransaction(
    connection: DatabaseConnection,
    settings: TransactionSettings,
  ): Promise<void> {
    // Transactions always run on the primary, whatever their first statement.
    await asRouting(connection).pin();
    let sql = 'begin';
    if (settings.isolationLevel !== undefined || settings.accessMode !== undefined) {
      sql = 'start transaction';
      if (settings.isolationLevel !== undefined)
        sql += ` isolation level ${settings.isolationLevel}`;
      if (settings.accessMode !== undefined) sql += ` ${settings.accessMode}`;
    }
    await connection.executeQuery(CompiledQuery.raw(sql));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const { rows } = await connection.executeQuery<{ command?: string }>(
      CompiledQuery.raw('commit'),
    );
    // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK, not with an error.
    if (rows[0]?.command === 'ROLLBACK') throw new AbortedTransaction();
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await connection.executeQuery(CompiledQuery.raw('rollback'));
    } catch (err) {
      asRouting(connection).markForDiscard();
      throw err;
    }
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint ${identifier(name)}`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to ${identifier(name)}`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release ${identifier(name)}`));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    await asRouting(connection).release();
  }

  async destroy(): Promise<void> {
    await this.config.pool.end();
  }
}

/**
 * Kysely over a ResilientPool, with reads on replicas: a select (outside a transaction, without
 * `FOR UPDATE`/`FOR SHARE`) goes through `db.read()`; inserts, updates, deletes, DDL, raw `sql`
 * queries and transactions run on a primary client. `kysely.connection()` blocks stay on one
 * primary client from their first statement that is not a plain read.
 *
 * @example
 * import { Kysely } from 'kysely';
 * import { ResilientDialect } from 'resilient-pool/kysely';
 *
 * const kysely = new Kysely<Database>({ dialect: new ResilientDialect({ pool: db }) });
 * await kysely.selectFrom('users').selectAll().execute(); // a replica
 * await kysely.insertInto('users').values(user).execute(); // the primary
 */
export class ResilientDialect implements Dialect {
  constructor(private readonly config: ResilientDialectConfig) {}

  createDriver(): Driver {
    return new ResilientDriver(this.config);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}
