/**
 * A no-I/O pg.Pool stand-in for unit tests and the in-process overhead bench. Behaviour per
 * statement comes from `handler`; connect failures from `connectError`.
 */
import { EventEmitter } from 'node:events';
import type {
  PgClientLike,
  PgPoolLike,
  QueryConfigLike,
  QueryResultLike,
} from '../../src/pg-like.js';

export type FakeHandler = (
  text: string,
  values: readonly unknown[] | undefined,
  pool: FakePool,
) => QueryResultLike | Promise<QueryResultLike>;

const OK: QueryResultLike = { rows: [{ ok: 1 }], rowCount: 1, command: 'SELECT', fields: [] };

export class FakeClient extends EventEmitter implements PgClientLike {
  released = 0;
  destroyed = false;
  /** Like pg's: reports the transaction status with every ReadyForQuery. */
  readonly connection = new EventEmitter();
  /** Set by FakePool.killIdle(): the next statement fails as on a dropped connection. */
  dead = false;
  private status = 'I';
  release: (err?: Error | boolean) => void = () => {};
  constructor(private readonly owner: FakePool) {
    super();
  }
  query(
    textOrConfig: string | QueryConfigLike,
    values?: readonly unknown[],
  ): Promise<QueryResultLike>;
  query(
    textOrConfig: string | QueryConfigLike,
    values: readonly unknown[] | undefined,
    callback: (err: Error | null, result?: QueryResultLike) => void,
  ): void;
  query(
    textOrConfig: string | QueryConfigLike,
    values?: readonly unknown[],
    callback?: (err: Error | null, result?: QueryResultLike) => void,
  ): Promise<QueryResultLike> | undefined {
    const text = typeof textOrConfig === 'string' ? textOrConfig : textOrConfig.text;
    this.owner.statements.push(text);
    let result: Promise<QueryResultLike>;
    try {
      if (this.dead) throw new Error('Connection terminated unexpectedly');
      result = Promise.resolve(this.owner.handler(text, values, this.owner));
    } catch (err) {
      result = Promise.reject(err);
    }
    result = result.then(
      (r) => {
        this.readyForQuery(text, false);
        return r;
      },
      (err: unknown) => {
        if (!this.dead) this.readyForQuery(text, true);
        throw err;
      },
    );
    if (!callback) return result;
    result.then(
      (r) => callback(null, r),
      (err: Error) => callback(err),
    );
    return undefined;
  }

  /** Reports the transaction status as PostgreSQL would after `text`. */
  private readyForQuery(text: string, failed: boolean): void {
    const word = text.trim().split(/\s+/)[0]?.toUpperCase();
    if (word === 'BEGIN' || word === 'START') this.status = 'T';
    else if (word === 'COMMIT' || word === 'ROLLBACK' || word === 'END') this.status = 'I';
    else if (failed && this.status === 'T') this.status = 'E';
    this.connection.emit('readyForQuery', { status: this.status });
  }
}

export class FakePool extends EventEmitter implements PgPoolLike {
  readonly options: { max: number };
  handler: FakeHandler = () => OK;
  /** When set, connect() rejects with it (a refused or failed connection). */
  connectError: Error | undefined;
  /** When true, connect() never settles (a server that accepts TCP but never answers). */
  connectHangs = false;
  readonly statements: string[] = [];
  private readonly idle: FakeClient[] = [];
  private checkedOut = 0;
  connects = 0;
  ended = false;

  constructor(name = 'fake', max = 10) {
    super();
    this.options = { max };
    Object.defineProperty(this, 'name', { value: name });
  }

  get totalCount(): number {
    return this.idle.length + this.checkedOut;
  }
  get idleCount(): number {
    return this.idle.length;
  }
  get waitingCount(): number {
    return 0;
  }

  connect(): Promise<PgClientLike>;
  connect(
    callback: (err: Error | undefined, client: PgClientLike | undefined, done: () => void) => void,
  ): void;
  connect(
    callback?: (err: Error | undefined, client: PgClientLike | undefined, done: () => void) => void,
  ): Promise<PgClientLike> | undefined {
    const result = this.connectPromise();
    if (!callback) return result;
    result.then(
      (client) => callback(undefined, client, () => client.release()),
      (err: Error) => callback(err, undefined, () => {}),
    );
    return undefined;
  }

  private connectPromise(): Promise<PgClientLike> {
    this.connects++;
    const connectError = this.connectError;
    if (connectError) return Promise.reject(connectError);
    if (this.connectHangs) return new Promise(() => {});
    const client = this.idle.pop() ?? new FakeClient(this);
    this.checkedOut++;
    client.release = (err?: Error | boolean) => {
      this.checkedOut--;
      client.released++;
      client.release = () => {
        throw new Error('Release called on client which has already been released to the pool.');
      };
      if (err || client.dead) client.destroyed = true;
      else this.idle.push(client);
    };
    return Promise.resolve(client);
  }

  /** Marks every idle client dead, as if the server dropped them unnoticed. */
  killIdle(): void {
    for (const client of this.idle) client.dead = true;
  }

  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }
}

/** An error shaped like node's socket errors. */
export function socketError(code = 'ECONNREFUSED'): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
}

/** An error shaped like a PostgreSQL error from pg (SQLSTATE in `code`). */
export function pgError(code: string, message = `pg error ${code}`): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}
