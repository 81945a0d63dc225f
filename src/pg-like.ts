/**
 * The structural shapes this library needs from node-postgres. Depending on these instead of
 * `pg`'s classes keeps `pg` a peer dependency and lets tests, FaultInjector and other
 * pg-compatible pools (for example pg-pool subclasses) stand in.
 */

/** A row set as node-postgres returns it; only the fields the library reads are named. */
export interface QueryResultLike<R = Record<string, unknown>> {
  rows: R[];
  rowCount: number | null;
  command?: string;
  fields?: ReadonlyArray<{ name: string; dataTypeID?: number }>;
}

/** A pg `QueryConfig`: `{ text, values, name, rowMode, types }`. */
export interface QueryConfigLike {
  text: string;
  values?: readonly unknown[];
  name?: string;
  rowMode?: 'array';
  types?: unknown;
}

/** A checked-out client, as `pg.PoolClient`. */
export interface PgClientLike {
  // biome-ignore lint/suspicious/noExplicitAny: pg's overloads return different result shapes
  query(textOrConfig: string | QueryConfigLike, values?: readonly unknown[]): Promise<any>;
  /** A submittable (pg-cursor, pg-query-stream): returned as given, results flow through it. */
  query<T extends { submit: (...args: never[]) => unknown }>(submittable: T): T;
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

/** What `ResilientPool` needs from a wrapped pool: the surface of `pg.Pool`. */
export interface PgPoolLike {
  connect(): Promise<PgClientLike>;
  /** pg's callback form; the library uses it on the hot path to avoid a promise per call. */
  connect(
    callback: (err: Error | undefined, client: PgClientLike | undefined, done: () => void) => void,
  ): void;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error, client?: unknown) => void): unknown;
  off?(event: 'error', listener: (err: Error, client?: unknown) => void): unknown;
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
  /** pg.Pool exposes its options; `max` sizes the gate, host/port/database name the endpoint. */
  readonly options?: {
    max?: number;
    host?: string;
    port?: number;
    database?: string;
    connectionString?: string;
  };
  readonly ended?: boolean;
}
