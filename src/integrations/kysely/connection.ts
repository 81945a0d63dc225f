/**
 * One Kysely "connection" over a ResilientPool. Nothing is checked out until it is needed:
 * while every statement so far has been a plain read, each goes through `db.read()` (a replica,
 * with the pool's fallback and retries); the first statement that is not, or a transaction,
 * pins a primary client (`db.connect({ role: 'write' })`), and every later statement of this
 * connection runs on that client, so `kysely.connection()` blocks and transactions keep their
 * session (SET, temporary tables, `lastval()`) as with Kysely's PostgresDriver.
 */
import type { CompiledQuery, DatabaseConnection, QueryResult } from 'kysely';
import type { PgClientLike, QueryResultLike } from '../../pg-like.js';
import type { ResilientPool } from '../../pool/resilient-pool.js';
import { type CursorConstructor, checkStream, streamRows, toKyselyResult } from './result.js';

/** What the dialect needs from a ResilientPool. */
export type KyselyPool = Pick<ResilientPool, 'read' | 'connect' | 'end'>;

export interface RoutingSettings {
  readonly cursor: CursorConstructor | undefined;
  readonly isRead: (query: CompiledQuery) => boolean;
}

export class RoutingConnection implements DatabaseConnection {
  #client: PgClientLike | undefined;
  #pinning: Promise<PgClientLike> | undefined;
  /** A ROLLBACK failed: the client is destroyed on release, as Kysely's driver does. */
  #discard = false;

  constructor(
    private readonly pool: KyselyPool,
    private readonly settings: RoutingSettings,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#discard) throw new Error('Postgres connection has been discarded');
    if (this.#pinning === undefined && this.settings.isRead(query)) {
      return toKyselyResult<R>(await this.pool.read(query.sql, query.parameters));
    }
    const client = this.#client ?? (await this.pin());
    return toKyselyResult<R>((await client.query(query.sql, query.parameters)) as QueryResultLike);
  }

  async *streamQuery<R>(
    query: CompiledQuery,
    chunkSize?: number,
  ): AsyncIterableIterator<QueryResult<R>> {
    const { cursor } = this.settings;
    checkStream(cursor, chunkSize);
    if (this.#discard) throw new Error('Postgres connection has been discarded');
    if (this.#pinning !== undefined || !this.settings.isRead(query)) {
      const client = this.#client ?? (await this.pin());
      yield* streamRows<R>((s) => client.query(s), cursor, query.sql, query.parameters, chunkSize!);
      return;
    }
    // A streamed read holds a replica client for as long as the stream runs, and no longer.
    const client = await this.pool.connect({ role: 'read' });
    let failure: Error | undefined;
    try {
      yield* streamRows<R>((s) => client.query(s), cursor, query.sql, query.parameters, chunkSize!);
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      // After a failed cursor the connection's state is not worth trusting: pg destroys it.
      client.release(failure);
    }
  }

  /** Checks out the primary client every later statement of this connection runs on. */
  pin(): Promise<PgClientLike> {
    if (this.#pinning === undefined) {
      const pinning = this.pool.connect({ role: 'write' }).then(
        (client) => {
          this.#client = client;
          return client;
        },
        (err: unknown) => {
          // Nothing is held: the next statement may try again.
          this.#pinning = undefined;
          throw err;
        },
      );
      this.#pinning = pinning;
    }
    return this.#pinning;
  }

  markForDiscard(): void {
    this.#discard = true;
  }

  /** Returns the pinned client, if any (destroyed after a failed ROLLBACK). */
  async release(): Promise<void> {
    const pinning = this.#pinning;
    if (pinning === undefined) return;
    const client = await pinning.catch(() => undefined);
    this.#pinning = undefined;
    this.#client = undefined;
    // The pool rolls back a client released inside a transaction, so none is reused half-done.
    client?.release(this.#discard ? true : undefined);
  }
}
