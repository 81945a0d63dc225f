/**
 * A stand-in for the `pg` module, for TypeORM's postgres driver (`options.driver`). TypeORM
 * builds its pools with `new driver.Pool(config)`; each such "pool" here is a view of one
 * ResilientPool: the primary for TypeORM's master, the replicas for its slaves, told apart by a
 * marker host that `typeormDataSourceOptions()` puts in the replication credentials.
 */
import type { PgClientLike } from '../../pg-like.js';
import type { ResilientPool } from '../../pool/resilient-pool.js';

/** What the TypeORM helper needs from a ResilientPool. */
export type TypeormPool = Pick<
  ResilientPool,
  'connect' | 'on' | 'off' | 'totalCount' | 'idleCount' | 'waitingCount'
>;

/** The `host` of TypeORM's master credentials: a view that checks out primary clients. */
export const PRIMARY_HOST = 'resilient-pool.primary';
/** The `host` of TypeORM's slave credentials: a view that checks out replica clients. */
export const REPLICAS_HOST = 'resilient-pool.replicas';

type ErrorListener = (err: Error) => void;
type Done = (err?: Error | boolean) => void;
type ConnectCallback = (err: Error | undefined, client?: PgClientLike, done?: Done) => void;

/** The part of pg.Pool TypeORM's postgres driver uses. */
export interface TypeormPoolView {
  connect(): Promise<PgClientLike>;
  connect(callback: ConnectCallback): void;
  on(event: string, listener: ErrorListener): this;
  off(event: string, listener: ErrorListener): this;
  removeListener(event: string, listener: ErrorListener): this;
  end(): Promise<void>;
  end(callback: (err?: Error) => void): void;
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
}

/** The `pg` module as TypeORM loads it: only `Pool` is needed. */
export interface PgModuleLike {
  Pool: new (config?: { host?: string }) => TypeormPoolView;
}

/** A `pg` module whose every Pool is a view of `db`; ending a view leaves `db` open. */
export function pgModuleFor(db: TypeormPool): PgModuleLike {
  class Pool implements TypeormPoolView {
    readonly #role: 'read' | 'write';
    /** The 'error' listeners TypeORM added, forwarded to `db` until the view is ended. */
    readonly #listeners = new Set<ErrorListener>();

    constructor(config?: { host?: string }) {
      this.#role = config?.host === REPLICAS_HOST ? 'read' : 'write';
    }

    connect(): Promise<PgClientLike>;
    connect(callback: ConnectCallback): void;
    connect(callback?: ConnectCallback): Promise<PgClientLike> | undefined {
      const checkout = db.connect({ role: this.#role });
      if (callback === undefined) return checkout;
      checkout.then(
        (client) => callback(undefined, client, (err) => client.release(err)),
        (err: Error) => callback(err),
      );
      return undefined;
    }

    on(event: string, listener: ErrorListener): this {
      // Idle-client errors of the wrapped pools reach TypeORM's poolErrorHandler, once: only
      // the master's view forwards them, since every view shares the one pool.
      if (event === 'error' && this.#role === 'write' && !this.#listeners.has(listener)) {
        this.#listeners.add(listener);
        db.on('error', listener);
      }
      return this;
    }

    off(event: string, listener: ErrorListener): this {
      if (event === 'error' && this.#listeners.delete(listener)) db.off('error', listener);
      return this;
    }

    removeListener(event: string, listener: ErrorListener): this {
      return this.off(event, listener);
    }

    /** TypeORM's `dataSource.destroy()`: the DataSource borrowed `db`, whose owner ends it. */
    end(): Promise<void>;
    end(callback: (err?: Error) => void): void;
    end(callback?: (err?: Error) => void): Promise<void> | undefined {
      for (const listener of this.#listeners) db.off('error', listener);
      this.#listeners.clear();
      if (callback === undefined) return Promise.resolve();
      queueMicrotask(() => callback());
      return undefined;
    }

    get totalCount(): number {
      return db.totalCount;
    }

    get idleCount(): number {
      return db.idleCount;
    }

    get waitingCount(): number {
      return db.waitingCount;
    }
  }
  return { Pool };
}
