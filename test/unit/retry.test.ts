import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AbortedError, AcquireTimeoutError, CircuitOpenError } from '../../src/errors.js';
import type { PgClientLike, QueryConfigLike, QueryResultLike } from '../../src/pg-like.js';
import { backoffDelay } from '../../src/retry/backoff.js';
import { RetryBudget } from '../../src/retry/budget.js';
import {
  markNotSent,
  markRepreparable,
  mayRetryStatement,
  wasNotSent,
} from '../../src/retry/policy.js';
import { sleep } from '../../src/retry/sleep.js';
import { type FakeClient, FakePool, pgError, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

const policy = { minTimeout: 25, maxTimeout: 1000, factor: 2 };

describe('backoffDelay (full jitter)', () => {
  it.each([
    [1, 25],
    [2, 50],
    [3, 100],
    [4, 200],
    [6, 800],
    [7, 1000],
    [20, 1000],
  ])('retry %i waits in [0, %i)', (n, cap) => {
    expect(backoffDelay(n, policy, () => 0)).toBe(0);
    expect(backoffDelay(n, policy, () => 0.5)).toBe(Math.floor(cap / 2));
    expect(backoffDelay(n, policy, () => 0.999999)).toBe(cap - 1);
  });

  it('spreads delays across the whole interval', () => {
    const delays = Array.from({ length: 2000 }, () => backoffDelay(3, policy));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(100);
    // Full jitter: both halves of the interval are used.
    expect(delays.some((d) => d < 25)).toBe(true);
    expect(delays.some((d) => d > 75)).toBe(true);
  });
});

describe('sleep', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('resolves after the delay', async () => {
    let done = false;
    const p = sleep(100).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(99);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('ends at once on abort and clears its timer', async () => {
    const controller = new AbortController();
    const p = sleep(10_000, controller.signal);
    controller.abort('stop');
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(vi.getTimerCount()).toBe(0);
    await expect(sleep(10, AbortSignal.abort())).rejects.toBeInstanceOf(AbortedError);
  });
});

describe('mayRetryStatement: only when nothing was sent, it ran on a hot standby, or idempotent', () => {
  it('retries connection failures that happened before sending', () => {
    expect(mayRetryStatement(markNotSent(socketError('ECONNREFUSED')), false, false)).toBe(true);
    expect(mayRetryStatement(new AcquireTimeoutError('p', 10), false, false)).toBe(true);
    expect(mayRetryStatement(new CircuitOpenError('p'), false, false)).toBe(true);
  });

  it('never re-sends a non-idempotent statement that may have run', () => {
    const lost = new Error('Connection terminated unexpectedly');
    expect(wasNotSent(lost)).toBe(false);
    expect(mayRetryStatement(lost, false, false)).toBe(false);
    expect(mayRetryStatement(lost, true, false)).toBe(true);
    expect(mayRetryStatement(socketError('ECONNRESET'), false, false)).toBe(false);
  });

  it('re-sends a statement that may have run only on a hot standby (which cannot write)', () => {
    const lost = new Error('Connection terminated unexpectedly');
    expect(mayRetryStatement(lost, false, true)).toBe(true);
    expect(mayRetryStatement(pgError('23505'), false, true)).toBe(false);
  });

  it('retries conflicts and read-only refusals (nothing was applied)', () => {
    expect(mayRetryStatement(pgError('40001'), false, false)).toBe(true);
    expect(mayRetryStatement(pgError('25006'), false, false)).toBe(true);
  });

  it('never retries permanent errors or unknown outcomes, even idempotent', () => {
    expect(mayRetryStatement(pgError('23505'), true, false)).toBe(false);
    expect(mayRetryStatement(pgError('57014'), true, false)).toBe(false);
    expect(mayRetryStatement(pgError('08007'), true, false)).toBe(false);
  });

  it('re-sends a stale named statement once, and only after its connection forgot it', () => {
    const stalePlan = () => pgError('0A000', 'cached plan must not change result type');
    const missing = () => pgError('26000', 'prepared statement "s" does not exist');
    // Refused at Bind, before it ran: safe even for a write that is not idempotent.
    expect(mayRetryStatement(markRepreparable(stalePlan()), false, false)).toBe(true);
    expect(mayRetryStatement(markRepreparable(missing()), false, false)).toBe(true);
    // Once per call.
    expect(mayRetryStatement(markRepreparable(stalePlan()), false, false, true)).toBe(false);
    // Not repaired (a connection that would skip the Parse again): not re-sent, idempotent or not.
    expect(mayRetryStatement(stalePlan(), false, false)).toBe(false);
    expect(mayRetryStatement(missing(), true, true)).toBe(false);
    // Any other 0A000 is permanent.
    expect(mayRetryStatement(markRepreparable(pgError('0A000', 'nope')), true, false)).toBe(false);
  });
});

/**
 * A FakePool whose clients keep named statements the way pg and PostgreSQL do: pg remembers
 * parsed names per connection (`connection.parsedStatements`) and then sends only Bind; the
 * server keeps the prepared statement, refuses a second Parse of a name (42P05), a Bind of a name
 * it does not have (26000), and a Bind of a statement whose result type changed (0A000).
 */
class PreparingPool extends FakePool {
  /** Server-side statements of each connection: name -> stale. */
  readonly server = new Map<object, Map<string, boolean>>();
  /** Named statements as the server saw them: `parse s`, `bind s`. */
  readonly protocol: string[] = [];
  /** Every Bind fails with 0A000, whatever was done (a server that keeps changing). */
  alwaysStale = false;
  private readonly prepared = new WeakSet<object>();

  /** `ALTER TABLE ... TYPE`: every statement prepared so far now has a stale result type. */
  alterTable(): void {
    for (const statements of this.server.values()) {
      for (const name of statements.keys()) statements.set(name, true);
    }
  }

  /** The server side forgets every statement (a new server behind PgBouncer, DISCARD ALL). */
  forgetOnServer(): void {
    for (const statements of this.server.values()) statements.clear();
  }

  override connect(): Promise<PgClientLike>;
  override connect(
    callback: (err: Error | undefined, client: PgClientLike | undefined, done: () => void) => void,
  ): void;
  override connect(
    callback?: (err: Error | undefined, client: PgClientLike | undefined, done: () => void) => void,
  ): Promise<PgClientLike> | undefined {
    if (callback === undefined) return super.connect().then((client) => this.adopt(client));
    super.connect((err, client, done) =>
      callback(err, client === undefined ? undefined : this.adopt(client), done),
    );
    return undefined;
  }

  private adopt(client: PgClientLike): PgClientLike {
    if (this.prepared.has(client)) return client;
    this.prepared.add(client);
    const fake = client as FakeClient;
    const parsed: Record<string, string> = {};
    Object.assign(fake.connection, { parsedStatements: parsed });
    const statements = new Map<string, boolean>();
    this.server.set(client, statements);
    const plain = fake.query.bind(fake) as (
      text: string | QueryConfigLike,
      values: readonly unknown[] | undefined,
      callback: (err: Error | null, result?: QueryResultLike) => void,
    ) => void;
    const query = (
      text: string | QueryConfigLike,
      values: readonly unknown[] | undefined,
      callback: (err: Error | null, result?: QueryResultLike) => void,
    ): void => {
      const deallocate = typeof text === 'string' && /^DEALLOCATE "(.*)"$/.exec(text);
      if (deallocate) statements.delete(deallocate[1]!.replaceAll('""', '"'));
      const name = typeof text === 'object' ? text.name : undefined;
      if (name === undefined || typeof text !== 'object') {
        plain(text, values, callback);
        return;
      }
      let err: Error | undefined;
      if (parsed[name] === undefined) {
        this.protocol.push(`parse ${name}`);
        if (statements.has(name))
          err = pgError('42P05', `prepared statement "${name}" already exists`);
        else statements.set(name, false);
      }
      if (err === undefined) {
        this.protocol.push(`bind ${name}`);
        const stale = statements.get(name);
        if (stale === undefined)
          err = pgError('26000', `prepared statement "${name}" does not exist`);
        else if (stale || this.alwaysStale) {
          err = pgError('0A000', 'cached plan must not change result type');
        }
      }
      if (err === undefined && parsed[name] === undefined) parsed[name] = text.text;
      const failure = err;
      // Through the fake's own query, so statements, transaction status and readyForQuery are
      // reported as for any other statement.
      plain(text.text, values, (plainErr, result) =>
        failure === undefined ? callback(plainErr, result) : callback(failure),
      );
    };
    fake.query = query as FakeClient['query'];
    return client;
  }
}

describe('stale named statements are prepared again, once (fake pool)', () => {
  const make = usePools();
  const named = { name: 'by_id', text: 'SELECT * FROM t WHERE id = $1' };

  function setup(options: { retries?: number } = {}) {
    const primary = new PreparingPool('p', 2);
    const retries: unknown[] = [];
    const db = make({
      primary,
      health: { enabled: false },
      retry: { minTimeout: 0, maxTimeout: 0, retries: options.retries ?? 3 },
    });
    db.on('retry', (event) => retries.push(event.error));
    return { primary, db, retries };
  }

  it('0A000 after ALTER TABLE: DEALLOCATE, parse again on the same connection, resolved', async () => {
    const { primary, db, retries } = setup();
    await db.write(named, [1]);
    primary.alterTable();
    primary.protocol.length = 0;
    primary.statements.length = 0;
    await expect(db.write(named, [1])).resolves.toMatchObject({ rowCount: 1 });
    expect(primary.protocol).toEqual(['bind by_id', 'parse by_id', 'bind by_id']);
    expect(primary.statements).toEqual([named.text, 'DEALLOCATE "by_id"', named.text]);
    expect(retries.map((e) => (e as { code?: string }).code)).toEqual(['0A000']);
    // The connection was repaired, not replaced.
    expect(primary.connects).toBe(3);
    expect(primary.totalCount).toBe(1);
  });

  it('26000 (the server lost it): parse again, no DEALLOCATE, resolved', async () => {
    const { primary, db, retries } = setup();
    await db.query(named, [1]);
    primary.forgetOnServer();
    primary.protocol.length = 0;
    primary.statements.length = 0;
    await expect(db.query(named, [1])).resolves.toMatchObject({ rowCount: 1 });
    expect(primary.protocol).toEqual(['bind by_id', 'parse by_id', 'bind by_id']);
    expect(primary.statements).toEqual([named.text, named.text]);
    expect(retries).toHaveLength(1);
    expect(primary.totalCount).toBe(1);
  });

  it('re-prepares only once: a second stale refusal reaches the caller', async () => {
    const { primary, db, retries } = setup();
    await db.write(named, [1]);
    primary.alwaysStale = true;
    primary.protocol.length = 0;
    await expect(db.write(named, [1])).rejects.toMatchObject({ code: '0A000' });
    expect(primary.protocol).toEqual(['bind by_id', 'parse by_id', 'bind by_id']);
    expect(retries).toHaveLength(1);
  });

  it('does not re-send a 26000 that was no cached statement of pg (EXECUTE of a missing PREPARE)', async () => {
    const { primary, db, retries } = setup();
    primary.handler = (text) => {
      if (text.startsWith('EXECUTE'))
        throw pgError('26000', 'prepared statement "x" does not exist');
      return { rows: [], rowCount: 0, command: 'SELECT', fields: [] };
    };
    await expect(db.write('EXECUTE x')).rejects.toMatchObject({ code: '26000' });
    await expect(db.write({ name: 'ex', text: 'EXECUTE x' })).rejects.toMatchObject({
      code: '26000',
    });
    expect(retries).toHaveLength(0);
  });

  it('with retries: 0 nothing is re-sent, but the connection is still repaired', async () => {
    const { primary, db } = setup({ retries: 0 });
    await db.write(named, [1]);
    primary.alterTable();
    await expect(db.write(named, [1])).rejects.toMatchObject({ code: '0A000' });
    await expect(db.write(named, [1])).resolves.toMatchObject({ rowCount: 1 });
  });

  it('a read is re-prepared on the replica that refused it, not moved to another', async () => {
    const primary = new PreparingPool('p', 2);
    const r1 = new PreparingPool('r1', 2);
    const r2 = new PreparingPool('r2', 2);
    const db = make({
      primary,
      replicas: [r1, r2],
      routing: { balancer: 'round-robin' },
      health: { enabled: false },
    });
    await db.read(named, [1]);
    await db.read(named, [1]);
    for (const pool of [r1, r2]) {
      pool.alterTable();
      pool.protocol.length = 0;
    }
    await expect(db.read(named, [1])).resolves.toMatchObject({ rowCount: 1 });
    const [refused, untouched] = r1.protocol.length > 0 ? [r1, r2] : [r2, r1];
    expect(refused.protocol).toEqual(['bind by_id', 'parse by_id', 'bind by_id']);
    expect(untouched.protocol).toEqual([]);
    expect(primary.protocol).toEqual([]);
  });

  it('a client without pg internals is destroyed instead, and the statement re-sent', async () => {
    const primary = new FakePool('p', 2);
    let calls = 0;
    primary.handler = (text) => {
      calls++;
      if (calls === 1) throw pgError('0A000', 'cached plan must not change result type');
      return { rows: [{ text }], rowCount: 1, command: 'SELECT', fields: [] };
    };
    const db = make({ primary, health: { enabled: false } });
    // No parsedStatements to consult: the fake's clients are not pg's, so forgetting means
    // destroying the connection.
    await expect(db.write(named, [1])).resolves.toMatchObject({ rowCount: 1 });
    expect(calls).toBe(2);
    expect(primary.connects).toBe(2);
  });
});

describe('RetryBudget', () => {
  it('allows the reserve with no traffic, then nothing', () => {
    const budget = new RetryBudget(10, 3);
    expect([1, 2, 3, 4].map(() => budget.tryWithdraw())).toEqual([true, true, true, false]);
  });

  it('allows budgetPercent of recent calls on top of the reserve', () => {
    const budget = new RetryBudget(10, 0);
    for (let i = 0; i < 100; i++) budget.recordCall();
    let granted = 0;
    while (budget.tryWithdraw()) granted++;
    expect(granted).toBe(10);
  });

  it('forgets calls and retries that slid out of the window', () => {
    const budget = new RetryBudget(10, 0, 10);
    for (let i = 0; i < 100; i++) budget.recordCall();
    for (let i = 0; i < 10; i++) expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
    for (let b = 0; b < 9; b++) budget.rotate();
    // Still inside the 10-bucket window.
    expect(budget.tryWithdraw()).toBe(false);
    budget.rotate();
    // Calls and retries of the first bucket are gone together.
    expect(budget.tryWithdraw()).toBe(false);
    for (let i = 0; i < 50; i++) budget.recordCall();
    let granted = 0;
    while (budget.tryWithdraw()) granted++;
    expect(granted).toBe(5);
  });
});
