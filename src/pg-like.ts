/**
 * The structural shapes this library needs from node-postgres. Depending on these instead of
 * `pg`'s classes keeps `pg` a peer dependency and lets tests, FaultInjector and other
 * pg-compatible pools (for example pg-pool subclasses) stand in.
 *
 * The shapes that ResilientPool hands back (results of `query()`, columns) follow @types/pg field
 * for field, so that a ResilientPool over pg.Pools is assignable wherever a `pg.Pool` is expected
 * (Drizzle's `NodePgClient`, a function taking a `pg.Pool`) without importing pg's types.
 */

/** A row set as a wrapped client returns it; only the fields the library reads are named. */
export interface QueryResultLike<R = Record<string, unknown>> {
  rows: R[];
  rowCount: number | null;
  command?: string;
  fields?: ReadonlyArray<{ name: string; dataTypeID?: number }>;
}

/** A column of a result, as pg describes it (pg's `FieldDef`). */
export interface FieldDefLike {
  name: string;
  tableID: number;
  columnID: number;
  dataTypeID: number;
  dataTypeSize: number;
  dataTypeModifier: number;
  format: string;
}

/**
 * A result as pg returns it (pg's `QueryResult`): what `ResilientPool.query()` resolves with.
 * It is the wrapped client's own result object, passed on unchanged.
 */
export interface PgQueryResult<R = Record<string, unknown>> {
  command: string;
  rowCount: number | null;
  oid: number;
  fields: FieldDefLike[];
  rows: R[];
}

/** A pg `QueryConfig`: `{ text, values, name, rowMode, types }`. */
export interface QueryConfigLike {
  text: string;
  values?: readonly unknown[];
  name?: string;
  rowMode?: 'array';
  types?: unknown;
}

/** A `QueryConfig` with `rowMode: 'array'`: each row comes back as an array of column values. */
export interface QueryArrayConfigLike extends QueryConfigLike {
  rowMode: 'array';
}

/**
 * Something pg's `client.query()` runs by calling its `submit` (pg-cursor, pg-query-stream,
 * `new pg.Query()`): results flow through the object itself, which `query()` returns.
 */
export interface SubmittableLike {
  submit: (connection: never) => void;
}

/** A checked-out client, as `pg.PoolClient`. */
export interface PgClientLike {
  query(
    textOrConfig: string | QueryConfigLike,
    values?: readonly unknown[],
  ): Promise<QueryResultLike>;
  /** A submittable (pg-cursor, pg-query-stream): returned as given, results flow through it. */
  query<T extends SubmittableLike>(submittable: T): T;
  /** pg's callback form; the library uses it to release clients synchronously. */
  query(
    textOrConfig: string | QueryConfigLike,
    values: readonly unknown[] | undefined,
    callback: (err: Error | null, result?: QueryResultLike) => void,
  ): void;
  /** Returns the client to its pool; a truthy argument destroys it instead. */
  release(err?: Error | boolean): void;
  on?(event: 'error', listener: (err: Error) => void): unknown;
  off?(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * What `ResilientPool` needs from a wrapped pool: the surface of `pg.Pool`. `Client` is the type
 * of the clients it hands out (`pg.PoolClient` for a pg.Pool), which `ResilientPool.connect()`
 * and the pool events pass on.
 */
export interface PgPoolLike<Client extends PgClientLike = PgClientLike> {
  connect(): Promise<Client>;
  /** pg's callback form; the library uses it on the hot path to avoid a promise per call. */
  connect(
    callback: (err: Error | undefined, client: Client | undefined, done: () => void) => void,
  ): void;
  end(): Promise<void>;
  /**
   * pg-pool's events. 'error' (an idle client failed) is always listened to; 'connect',
   * 'acquire', 'release' and 'remove' only while someone listens to them on the ResilientPool.
   */
  on(event: 'error', listener: (err: Error, client?: unknown) => void): unknown;
  off?(event: 'error', listener: (err: Error, client?: unknown) => void): unknown;
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
  /** Clients past `maxLifetimeSeconds`, waiting to be closed (pg.Pool's; 0 when absent). */
  readonly expiredCount?: number;
  /** pg.Pool exposes its options; `max` sizes the gate, host/port/database name the endpoint. */
  readonly options?: {
    max?: number;
    host?: string;
    port?: number;
    database?: string;
    connectionString?: string;
  };
  readonly ending?: boolean;
  readonly ended?: boolean;
}

/**
 * The type of the clients a pool hands out: `pg.PoolClient` for a pg.Pool. For a union of pool
 * types, the clients' common type (not a union, whose overloaded `query` could not be called).
 */
export type ClientOf<Pool> = [Pool] extends [PgPoolLike<infer Client>]
  ? IsUnion<Client> extends false
    ? Client
    : PgClientLike
  : PgClientLike;

/** `false` for a single type; `true` (or `boolean`) for a union. */
type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;
