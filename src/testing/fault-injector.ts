/**
 * A pg.Pool stand-in that wraps a real (or fake) pool and, on command, makes `connect()` or a
 * checked-out client's `query()` fail, wait or hang. It tests what the layers above a pool do
 * with failures the network proxy cannot produce on cue: a specific SQLSTATE on the third
 * statement, a connect that never settles, an error only for statements touching one table.
 *
 * How faults combine on one call: first a matching delay (if any) runs out, then the first
 * matching fail or hang rule decides the outcome; with none, the call goes to the real pool or
 * client. Rules of the same kind are consulted in the order they were added, so
 * `failConnect(a, { times: 1 }); failConnect(b, { times: 1 })` fails the next connect with `a`
 * and the one after with `b`.
 */
import type { PgClientLike, PgPoolLike, QueryConfigLike } from '../pg-like.js';

/** Which call a fault applies to. */
export type FaultOperation = 'connect' | 'query';

/** The error to fail with: one instance (thrown every time) or a factory (a fresh one each time). */
export type FaultError = Error | (() => Error);

/** How long a fault stays armed. */
export interface FaultTimes {
  /**
   * How many calls the fault applies to before it is used up; `Infinity` keeps it until
   * `heal()`.
   * @default Infinity
   */
  times?: number;
}

/** Which statements a query fault applies to, and how often. */
export interface QueryFaultOptions extends FaultTimes {
  /**
   * Only statements whose text contains this string, or matches this RegExp.
   * @default every statement
   */
  match?: RegExp | string;
}

/** Counters for one operation. */
export interface FaultInjectorOperationStats {
  /** Calls made through the injector. */
  calls: number;
  /** Calls failed with an injected error. */
  failed: number;
  /** Calls held back by an injected delay. */
  delayed: number;
  /** Calls made to hang. */
  hung: number;
}

/** A snapshot of the injector's counters; see {@link FaultInjector.stats}. */
export interface FaultInjectorStats {
  connect: FaultInjectorOperationStats;
  query: FaultInjectorOperationStats;
  /** Calls hanging right now, to be released by `heal()`. */
  hanging: number;
  /** Faults still armed, in the order they are consulted, e.g. `'failQuery /^INSERT/ (2 left)'`. */
  faults: string[];
}

interface Rule {
  kind: 'fail' | 'hang' | 'delay';
  operation: FaultOperation;
  remaining: number;
  match: RegExp | string | undefined;
  error: FaultError | undefined;
  ms: number;
}

/** What a client query function looks like before pg's overloads are applied to it. */
type RawQuery = (this: PgClientLike, ...args: unknown[]) => unknown;
type QueryCallback = (err: Error | null, result?: unknown) => void;
/** pg.Pool's `connect(callback)`; `done` is the client's release(). */
type ConnectCallback = (
  err: Error | undefined,
  client: PgClientLike | undefined,
  done: () => void,
) => void;

const INJECTOR = 'FaultInjector';

function checkTimes(times: unknown, method: string): number {
  if (times === undefined) return Number.POSITIVE_INFINITY;
  if (
    typeof times !== 'number' ||
    !(Number.isInteger(times) || times === Number.POSITIVE_INFINITY) ||
    times < 1
  ) {
    throw new RangeError(
      `${INJECTOR}.${method}: options.times must be an integer >= 1 or Infinity, got ${String(times)}`,
    );
  }
  return times;
}

function checkMatch(match: unknown, method: string): RegExp | string | undefined {
  if (match === undefined || typeof match === 'string' || match instanceof RegExp) return match;
  throw new TypeError(
    `${INJECTOR}.${method}: options.match must be a string or a RegExp, got ${typeof match}`,
  );
}

function checkOperation(operation: unknown, method: string): FaultOperation {
  if (operation === 'connect' || operation === 'query') return operation;
  throw new TypeError(
    `${INJECTOR}.${method}: operation must be 'connect' or 'query', got ${String(operation)}`,
  );
}

function checkError(error: unknown, method: string): FaultError {
  if (error instanceof Error || typeof error === 'function') return error as FaultError;
  throw new TypeError(`${INJECTOR}.${method}: expected an Error or a function returning one`);
}

function makeError(source: FaultError | undefined): Error {
  const err = typeof source === 'function' ? source() : source;
  return err instanceof Error ? err : new Error(`${INJECTOR}: injected failure`);
}

function matches(rule: Rule, text: string | undefined): boolean {
  if (rule.match === undefined) return true;
  if (text === undefined) return false;
  // search() ignores a global RegExp's lastIndex, so one rule matches the same way every time.
  return typeof rule.match === 'string' ? text.includes(rule.match) : text.search(rule.match) >= 0;
}

function describeRule(rule: Rule): string {
  const name =
    rule.kind === 'fail'
      ? rule.operation === 'connect'
        ? 'failConnect'
        : 'failQuery'
      : `${rule.kind} ${rule.operation}${rule.kind === 'delay' ? ` ${rule.ms}ms` : ''}`;
  const match =
    rule.match === undefined
      ? ''
      : typeof rule.match === 'string'
        ? ` ${JSON.stringify(rule.match)}`
        : ` ${String(rule.match)}`;
  const left = Number.isFinite(rule.remaining) ? ` (${rule.remaining} left)` : '';
  return `${name}${match}${left}`;
}

/** The statement text of any form pg's `query()` accepts; undefined for submittables. */
function statementText(textOrConfig: unknown): string | undefined {
  if (typeof textOrConfig === 'string') return textOrConfig;
  const text = (textOrConfig as Partial<QueryConfigLike> | null)?.text;
  return typeof text === 'string' ? text : undefined;
}

/**
 * Wraps a pool so tests can make its `connect()` and its clients' `query()` fail, wait or hang.
 * The injector is itself a {@link PgPoolLike}: hand it to `ResilientPool` (or anything else that
 * takes a pg.Pool) in place of the pool. Counters and pool events pass through to the wrapped
 * pool. Fault methods return the injector, so they chain.
 *
 * Queries are intercepted on the clients it hands out, for that checkout only: `release()`
 * restores the client's own `query`, so a client back in the pool is untouched. Both the promise
 * form and the callback form (`query(text, values, callback)`, `query(text, callback)`) are
 * supported; submittables such as pg-cursor pass through unfaulted.
 *
 * `heal()` disarms every fault, cuts pending delays short (the delayed call goes ahead at once),
 * and rejects calls that hang with `Error('FaultInjector healed')` rather than letting them go
 * ahead: a test then knows exactly when and how each hung call ends.
 *
 * @example
 * const injector = new FaultInjector(new pg.Pool(config));
 * const db = new ResilientPool({ primary: injector });
 * injector.failConnect(() => Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), { times: 1 });
 * injector.failQuery(() => Object.assign(new Error('deadlock'), { code: '40P01' }), { match: /^UPDATE/ });
 * injector.delay('query', 200).hang('connect');
 * injector.heal();
 */
export class FaultInjector implements PgPoolLike {
  /**
   * The wrapped pool. Not named `pool`: ResilientPool reads an object with a `pool` property as
   * an endpoint config `{ pool, name }`, and would then bypass the injector.
   */
  readonly wrappedPool: PgPoolLike;
  #delays: Rule[] = [];
  #outcomes: Rule[] = [];
  readonly #hung = new Set<(err: Error) => void>();
  readonly #sleeping = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  readonly #stats = {
    connect: { calls: 0, failed: 0, delayed: 0, hung: 0 },
    query: { calls: 0, failed: 0, delayed: 0, hung: 0 },
  };

  constructor(pool: PgPoolLike) {
    if (typeof pool !== 'object' || pool === null || typeof pool.connect !== 'function') {
      throw new TypeError(`${INJECTOR}: expected a pg.Pool-like object with connect()`);
    }
    this.wrappedPool = pool;
  }

  get totalCount(): number {
    return this.wrappedPool.totalCount;
  }

  /**
   * The wrapped pool's idle count, except 0 while a connect fault is armed: a pool with idle
   * clients hands one over at once, so callers (ResilientPool among them) need no timer for it;
   * an injected connect delay or hang would otherwise escape their acquire timeouts.
   */
  get idleCount(): number {
    const connectFault = [...this.#delays, ...this.#outcomes].some(
      (r) => r.operation === 'connect',
    );
    return connectFault ? 0 : this.wrappedPool.idleCount;
  }

  get waitingCount(): number {
    return this.wrappedPool.waitingCount;
  }

  get options(): PgPoolLike['options'] {
    return this.wrappedPool.options;
  }

  get ended(): boolean | undefined {
    return this.wrappedPool.ended;
  }

  /**
   * The wrapped pool's `connect()`, unless a fault says otherwise. A failed or hung connect
   * never reaches the wrapped pool, so, as with a refused connection, nothing was sent. Both of
   * pg's forms work: the promise, and `connect((err, client, done) => ...)`.
   */
  connect(): Promise<PgClientLike>;
  connect(callback: ConnectCallback): void;
  connect(callback?: ConnectCallback): Promise<PgClientLike> | undefined {
    this.#stats.connect.calls++;
    const delay = this.#take(this.#delays, 'connect', undefined);
    if (delay !== undefined) this.#stats.connect.delayed++;
    if (callback === undefined) {
      if (delay === undefined) return this.#connectNow();
      return this.#sleep(delay.ms).then(() => this.#connectNow());
    }
    const proceed = () => {
      const fault = this.#fault('connect', undefined);
      if (fault !== undefined) {
        fault.catch((err: Error) => callback(err, undefined, () => {}));
        return;
      }
      // The wrapped pool's own callback form, so a caller that chose it for its timing keeps it.
      this.wrappedPool.connect((err, client, done) => {
        if (err !== undefined || client === undefined) {
          callback(err, client, done);
          return;
        }
        const wrapped = this.#wrap(client);
        // pg's `done` is the client's release(); ours must also put the client's query back.
        callback(undefined, wrapped, ((releaseErr?: Error | boolean) =>
          wrapped.release(releaseErr)) as () => void);
      });
    };
    if (delay === undefined) proceed();
    else void this.#sleep(delay.ms).then(proceed);
    return undefined;
  }

  /** Releases hung calls and pending delays (see `heal()`), then ends the wrapped pool. */
  end(): Promise<void> {
    this.heal();
    return this.wrappedPool.end();
  }

  on(event: 'error', listener: (err: Error, client?: unknown) => void): this {
    this.wrappedPool.on(event, listener);
    return this;
  }

  off(event: 'error', listener: (err: Error, client?: unknown) => void): this {
    this.wrappedPool.off?.(event, listener);
    return this;
  }

  /**
   * Makes `connect()` reject with `error` (or what `error()` returns) without reaching the pool.
   * @example injector.failConnect(() => Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), { times: 2 })
   */
  failConnect(error: FaultError, options: FaultTimes = {}): this {
    return this.#arm(this.#outcomes, {
      kind: 'fail',
      operation: 'connect',
      remaining: checkTimes(options.times, 'failConnect'),
      match: undefined,
      error: checkError(error, 'failConnect'),
      ms: 0,
    });
  }

  /**
   * Makes matching statements on checked-out clients fail with `error` (or what `error()`
   * returns). The statement is not sent; the client stays usable, as after a SQL error.
   * @example injector.failQuery(() => Object.assign(new Error('unique'), { code: '23505' }), { match: 'INSERT', times: 1 })
   */
  failQuery(error: FaultError, options: QueryFaultOptions = {}): this {
    return this.#arm(this.#outcomes, {
      kind: 'fail',
      operation: 'query',
      remaining: checkTimes(options.times, 'failQuery'),
      match: checkMatch(options.match, 'failQuery'),
      error: checkError(error, 'failQuery'),
      ms: 0,
    });
  }

  /**
   * Holds matching calls back for `ms` before they go ahead (or meet a fail or hang rule). Uses a
   * real, ref'd timer, so a test waiting on the call keeps the process alive.
   */
  delay(operation: 'connect', ms: number, options?: FaultTimes): this;
  delay(operation: 'query', ms: number, options?: QueryFaultOptions): this;
  delay(operation: FaultOperation, ms: number, options: QueryFaultOptions = {}): this {
    const op = checkOperation(operation, 'delay');
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`${INJECTOR}.delay: ms must be a finite number >= 0, got ${String(ms)}`);
    }
    return this.#arm(this.#delays, {
      kind: 'delay',
      operation: op,
      remaining: checkTimes(options.times, 'delay'),
      match: this.#queryMatch(op, options.match, 'delay'),
      error: undefined,
      ms,
    });
  }

  /**
   * Makes matching calls never settle, like a server that accepted the connection and went
   * silent. Only `heal()` (or `end()`) ends them, by rejecting with `Error('FaultInjector
   * healed')`; bound them with an acquire timeout, `query_timeout` or an AbortSignal.
   */
  hang(operation: 'connect', options?: FaultTimes): this;
  hang(operation: 'query', options?: QueryFaultOptions): this;
  hang(operation: FaultOperation, options: QueryFaultOptions = {}): this {
    const op = checkOperation(operation, 'hang');
    return this.#arm(this.#outcomes, {
      kind: 'hang',
      operation: op,
      remaining: checkTimes(options.times, 'hang'),
      match: this.#queryMatch(op, options.match, 'hang'),
      error: undefined,
      ms: 0,
    });
  }

  /**
   * Disarms every fault; delayed calls go ahead at once; hung calls reject with
   * `Error('FaultInjector healed')`. Counters are kept.
   */
  heal(): this {
    this.#delays = [];
    this.#outcomes = [];
    for (const sleeper of [...this.#sleeping]) {
      clearTimeout(sleeper.timer);
      sleeper.wake();
    }
    this.#sleeping.clear();
    const hung = [...this.#hung];
    this.#hung.clear();
    for (const reject of hung) reject(new Error(`${INJECTOR} healed`));
    return this;
  }

  /** Counters since construction, calls hanging now and the faults still armed. */
  stats(): FaultInjectorStats {
    return {
      connect: { ...this.#stats.connect },
      query: { ...this.#stats.query },
      hanging: this.#hung.size,
      faults: [...this.#delays, ...this.#outcomes].map(describeRule),
    };
  }

  #queryMatch(op: FaultOperation, match: unknown, method: string): RegExp | string | undefined {
    const checked = checkMatch(match, method);
    if (checked !== undefined && op === 'connect') {
      throw new TypeError(`${INJECTOR}.${method}: options.match applies to 'query' only`);
    }
    return checked;
  }

  #arm(list: Rule[], rule: Rule): this {
    list.push(rule);
    return this;
  }

  /** The first armed rule for the call, used once. */
  #take(list: Rule[], operation: FaultOperation, text: string | undefined): Rule | undefined {
    const index = list.findIndex((r) => r.operation === operation && matches(r, text));
    if (index < 0) return undefined;
    const rule = list[index]!;
    rule.remaining--;
    if (rule.remaining <= 0) list.splice(index, 1);
    return rule;
  }

  /** A rejected or never-settling promise when a fail or hang rule applies; else undefined. */
  #fault(operation: FaultOperation, text: string | undefined): Promise<never> | undefined {
    const rule = this.#take(this.#outcomes, operation, text);
    if (rule === undefined) return undefined;
    if (rule.kind === 'hang') {
      this.#stats[operation].hung++;
      return new Promise<never>((_, reject) => {
        this.#hung.add(reject);
      });
    }
    this.#stats[operation].failed++;
    return Promise.reject(makeError(rule.error));
  }

  #connectNow(): Promise<PgClientLike> {
    return (
      this.#fault('connect', undefined) ?? this.wrappedPool.connect().then((c) => this.#wrap(c))
    );
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.#sleeping.delete(sleeper);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.#sleeping.add(sleeper);
    });
  }

  /** Intercepts `query` on this checkout; `release()` puts the client's own `query` back. */
  #wrap(client: PgClientLike): PgClientLike {
    const target = client as unknown as { query: RawQuery; release: PgClientLike['release'] };
    // pg's query lives on the prototype; a client with its own (a test double) gets it back.
    const ownQuery = Object.hasOwn(client, 'query') ? target.query : undefined;
    const realQuery = target.query;
    const poolRelease = target.release;
    target.query = (...args: unknown[]): unknown => this.#query(client, realQuery, args);
    target.release = (err?: Error | boolean) => {
      if (ownQuery === undefined) Reflect.deleteProperty(client, 'query');
      else target.query = ownQuery;
      target.release = poolRelease;
      return poolRelease.call(client, err);
    };
    return client;
  }

  #query(client: PgClientLike, realQuery: RawQuery, args: unknown[]): unknown {
    const [textOrConfig, second, third] = args;
    const pass = () => realQuery.apply(client, args);
    // Submittables (pg-cursor, pg-query-stream) run their own protocol; they are not faulted.
    if (typeof (textOrConfig as { submit?: unknown } | null)?.submit === 'function') return pass();
    const callback = (
      typeof third === 'function'
        ? third
        : typeof second === 'function'
          ? second
          : typeof (textOrConfig as { callback?: unknown } | null)?.callback === 'function'
            ? (textOrConfig as { callback: unknown }).callback
            : undefined
    ) as QueryCallback | undefined;
    const text = statementText(textOrConfig);
    this.#stats.query.calls++;
    const delay = this.#take(this.#delays, 'query', text);
    if (delay === undefined) {
      const fault = this.#fault('query', text);
      // No fault: the real call, untouched, returns what pg returns for this form.
      if (fault === undefined) return pass();
      if (callback === undefined) return fault;
      fault.catch((err: Error) => callback(err));
      return undefined;
    }
    this.#stats.query.delayed++;
    const delayed = this.#sleep(delay.ms).then(() => this.#fault('query', text) ?? pass());
    if (callback === undefined) return delayed;
    // In callback form pass() returns nothing and pg calls the callback itself.
    delayed.catch((err: Error) => callback(err));
    return undefined;
  }
}
