import { afterEach, describe, expect, it, vi } from 'vitest';
import { AcquireTimeoutError, type PgClientLike, ResilientPool } from '../../src/index.js';
import type { QueryResultLike } from '../../src/pg-like.js';
import { FaultInjector } from '../../src/testing/fault-injector.js';
import { FakeClient, FakePool, pgError, socketError } from '../support/fake-pool.js';

afterEach(() => {
  vi.useRealTimers();
});

/** Runs `client.query` in pg's callback form and turns the outcome into a promise. */
function queryCb(
  client: PgClientLike,
  text: string,
  values?: readonly unknown[],
): Promise<QueryResultLike> {
  return new Promise((resolve, reject) => {
    client.query(text, values, (err, result) => (err ? reject(err) : resolve(result!)));
  });
}

/** Settles within the current fake-timer tick or reports 'pending'. */
async function state(promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let outcome: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => {
      outcome = 'resolved';
    },
    () => {
      outcome = 'rejected';
    },
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return outcome;
}

describe('FaultInjector passthrough', () => {
  it('is a pool: connect, query, release, counters, options and events go to the wrapped pool', async () => {
    const pool = new FakePool('p', 7);
    const injector = new FaultInjector(pool);
    expect(injector.options).toEqual({ max: 7 });
    const client = await injector.connect();
    expect(injector.totalCount).toBe(1);
    expect(injector.idleCount).toBe(0);
    expect(injector.waitingCount).toBe(0);
    await expect(client.query('SELECT 1')).resolves.toMatchObject({ rows: [{ ok: 1 }] });
    await expect(queryCb(client, 'SELECT 2', [1])).resolves.toMatchObject({ rowCount: 1 });
    client.release();
    expect(injector.idleCount).toBe(1);
    expect(pool.statements).toEqual(['SELECT 1', 'SELECT 2']);

    const seen: Error[] = [];
    const listener = (err: Error) => seen.push(err);
    pool.on('error', () => {}); // an 'error' with no listener at all would throw
    injector.on('error', listener);
    pool.emit('error', new Error('idle client lost'));
    injector.off('error', listener);
    pool.emit('error', new Error('not seen'));
    expect(seen.map((e) => e.message)).toEqual(['idle client lost']);

    await injector.end();
    expect(pool.ended).toBe(true);
    expect(injector.ended).toBe(true);
    expect(injector.wrappedPool).toBe(pool);
    expect(injector.stats()).toMatchObject({
      connect: { calls: 1, failed: 0, delayed: 0, hung: 0 },
      query: { calls: 2, failed: 0, delayed: 0, hung: 0 },
      hanging: 0,
      faults: [],
    });
  });

  it('intercepts query for the checkout only: release() puts the client back as it was', async () => {
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    const client = (await injector.connect()) as FakeClient;
    expect(Object.hasOwn(client, 'query')).toBe(true);
    client.release();
    expect(Object.hasOwn(client, 'query')).toBe(false);
    expect(client.query).toBe(FakeClient.prototype.query);
    expect(client.released).toBe(1);

    // Faults armed now reach clients checked out from now on, not the one in the pool.
    injector.failQuery(new Error('boom'));
    await expect(client.query('SELECT 1')).resolves.toBeDefined();
    const again = await injector.connect();
    expect(again).toBe(client);
    await expect(again.query('SELECT 1')).rejects.toThrow('boom');
    again.release();
    expect(Object.hasOwn(client, 'query')).toBe(false);
  });

  it('puts back a query the client had as its own property', async () => {
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    const first = (await injector.connect()) as FakeClient;
    first.release();
    const own = vi.fn(FakeClient.prototype.query);
    Object.defineProperty(first, 'query', { value: own, writable: true, configurable: true });
    const client = await injector.connect();
    await client.query('SELECT 1');
    expect(own).toHaveBeenCalledTimes(1);
    client.release();
    expect(first.query).toBe(own);
  });
});

describe('FaultInjector.failConnect', () => {
  it('rejects without reaching the pool, `times` times, then connects again', async () => {
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    const refused = socketError('ECONNREFUSED');
    injector.failConnect(refused, { times: 2 });
    expect(injector.stats().faults).toEqual(['failConnect (2 left)']);
    await expect(injector.connect()).rejects.toBe(refused);
    await expect(injector.connect()).rejects.toBe(refused);
    expect(pool.connects).toBe(0);
    const client = await injector.connect();
    client.release();
    expect(pool.connects).toBe(1);
    expect(injector.stats().connect).toEqual({ calls: 3, failed: 2, delayed: 0, hung: 0 });
    expect(injector.stats().faults).toEqual([]);
  });

  it('calls a factory for a fresh error each time, and stays armed until heal() by default', async () => {
    const injector = new FaultInjector(new FakePool());
    let n = 0;
    injector.failConnect(() => new Error(`refused ${++n}`));
    await expect(injector.connect()).rejects.toThrow('refused 1');
    await expect(injector.connect()).rejects.toThrow('refused 2');
    await expect(injector.connect()).rejects.toThrow('refused 3');
    injector.heal();
    await expect(injector.connect()).resolves.toBeDefined();
  });

  it("works with pg's callback form connect((err, client, done) => ...)", async () => {
    vi.useFakeTimers();
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    const connectCb = () =>
      new Promise<{ err: Error | undefined; client?: PgClientLike; done: () => void }>(
        (resolve) => {
          injector.connect((err, client, done) => resolve({ err, client, done }));
        },
      );
    injector.failConnect(new Error('refused'), { times: 1 });
    expect((await connectCb()).err?.message).toBe('refused');
    expect(pool.connects).toBe(0);

    injector.delay('connect', 20, { times: 1 });
    const delayed = connectCb();
    await vi.advanceTimersByTimeAsync(20);
    const { err, client, done } = await delayed;
    expect(err).toBeUndefined();
    expect(Object.hasOwn(client!, 'query')).toBe(true);
    // `done` releases like client.release() and puts the client's query back.
    done();
    expect(Object.hasOwn(client!, 'query')).toBe(false);
    expect(injector.idleCount).toBe(1);

    injector.hang('connect', { times: 1 });
    const hung = connectCb();
    expect(await state(hung)).toBe('pending');
    injector.heal();
    expect((await hung).err?.message).toBe('FaultInjector healed');
    expect(injector.stats().connect).toEqual({ calls: 3, failed: 1, delayed: 1, hung: 1 });
  });

  it('uses rules in the order they were armed', async () => {
    const injector = new FaultInjector(new FakePool());
    injector.failConnect(new Error('first'), { times: 1 }).failConnect(new Error('second'), {
      times: 1,
    });
    await expect(injector.connect()).rejects.toThrow('first');
    await expect(injector.connect()).rejects.toThrow('second');
    await expect(injector.connect()).resolves.toBeDefined();
  });
});

describe('FaultInjector.failQuery', () => {
  it('fails the promise form without sending the statement; the client stays usable', async () => {
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    const client = await injector.connect();
    injector.failQuery(() => pgError('23505'), { times: 1 });
    await expect(client.query('INSERT INTO t VALUES (1)')).rejects.toMatchObject({
      code: '23505',
    });
    await expect(client.query('INSERT INTO t VALUES (2)')).resolves.toBeDefined();
    client.release();
    expect(pool.statements).toEqual(['INSERT INTO t VALUES (2)']);
    expect(injector.stats().query).toEqual({ calls: 2, failed: 1, delayed: 0, hung: 0 });
  });

  it('fails the callback forms: (text, values, cb), (text, cb) and a config object', async () => {
    const injector = new FaultInjector(new FakePool());
    const client = await injector.connect();
    injector.failQuery(() => new Error('injected'));
    await expect(queryCb(client, 'SELECT 1', [1])).rejects.toThrow('injected');
    const twoArgs = await new Promise<Error | null>((resolve) => {
      (client.query as unknown as (t: string, cb: (err: Error | null) => void) => void)(
        'SELECT 1',
        resolve,
      );
    });
    expect(twoArgs?.message).toBe('injected');
    await expect(client.query({ text: 'SELECT 1' })).rejects.toThrow('injected');
    const returned = client.query('SELECT 1', [], () => {});
    expect(returned).toBeUndefined();
    client.release();
  });

  it('`match` picks statements by substring or RegExp', async () => {
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    const client = await injector.connect();
    injector.failQuery(new Error('no writes'), { match: /^\s*(INSERT|UPDATE)/i });
    injector.failQuery(new Error('no audit'), { match: 'audit_log' });
    await expect(client.query('update t set a = 1')).rejects.toThrow('no writes');
    await expect(queryCb(client, 'SELECT * FROM audit_log')).rejects.toThrow('no audit');
    await expect(client.query({ text: 'SELECT * FROM audit_log' })).rejects.toThrow('no audit');
    await expect(client.query('SELECT 1')).resolves.toBeDefined();
    await expect(queryCb(client, 'DELETE FROM t')).resolves.toBeDefined();
    client.release();
    expect(pool.statements).toEqual(['SELECT 1', 'DELETE FROM t']);
    expect(injector.stats().faults).toEqual([
      'failQuery /^\\s*(INSERT|UPDATE)/i',
      'failQuery "audit_log"',
    ]);
  });

  it('a global RegExp matches the same way on every call', async () => {
    const injector = new FaultInjector(new FakePool());
    const client = await injector.connect();
    injector.failQuery(new Error('x'), { match: /SELECT/g });
    await expect(client.query('SELECT 1')).rejects.toThrow('x');
    await expect(client.query('SELECT 1')).rejects.toThrow('x');
    client.release();
  });

  it('passes submittables (pg-cursor and friends) through', async () => {
    const injector = new FaultInjector(new FakePool());
    const own = vi.spyOn(FakeClient.prototype, 'query');
    const client = await injector.connect();
    injector.failQuery(new Error('x'));
    const cursor = { text: 'SELECT 1', submit: () => {} };
    await client.query(cursor as unknown as string);
    expect(own).toHaveBeenCalledWith(cursor);
    own.mockRestore();
    client.release();
  });
});

describe('FaultInjector.delay', () => {
  it('holds connect and query back by `ms` on a real timer, then goes ahead', async () => {
    vi.useFakeTimers();
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    injector.delay('connect', 100, { times: 1 }).delay('query', 50, { match: 'slow' });
    const connecting = injector.connect();
    await vi.advanceTimersByTimeAsync(99);
    expect(await state(connecting)).toBe('pending');
    expect(pool.connects).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    const client = await connecting;

    const fast = client.query('SELECT 1');
    expect(await state(fast)).toBe('resolved');
    const slow = queryCb(client, 'SELECT slow');
    const slowPromise = client.query('SELECT slow');
    await vi.advanceTimersByTimeAsync(49);
    expect(await state(slow)).toBe('pending');
    expect(await state(slowPromise)).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await expect(slow).resolves.toMatchObject({ rows: [{ ok: 1 }] });
    await expect(slowPromise).resolves.toMatchObject({ rows: [{ ok: 1 }] });
    client.release();
    expect(injector.stats()).toMatchObject({
      connect: { calls: 1, delayed: 1 },
      query: { calls: 3, delayed: 2 },
    });
  });

  it('a delay followed by a failure fails after the delay', async () => {
    vi.useFakeTimers();
    const injector = new FaultInjector(new FakePool());
    injector.delay('connect', 30).failConnect(new Error('late refusal'));
    const connecting = injector.connect();
    connecting.catch(() => {});
    await vi.advanceTimersByTimeAsync(29);
    expect(await state(connecting)).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await expect(connecting).rejects.toThrow('late refusal');
  });

  it('heal() cuts a pending delay short: the call goes ahead at once', async () => {
    vi.useFakeTimers();
    const injector = new FaultInjector(new FakePool());
    injector.delay('connect', 60_000);
    const connecting = injector.connect();
    expect(await state(connecting)).toBe('pending');
    injector.heal();
    expect(await state(connecting)).toBe('resolved');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('FaultInjector.hang', () => {
  it('connect and query never settle until heal(), which rejects them', async () => {
    vi.useFakeTimers();
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    const client = await injector.connect();
    injector.hang('connect').hang('query', { match: 'pg_sleep', times: 1 });
    const connecting = injector.connect();
    const promiseForm = client.query('SELECT pg_sleep(1)');
    const callbackForm = queryCb(client, 'SELECT pg_sleep(2)');
    const unaffected = client.query('SELECT 1');
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(await state(connecting)).toBe('pending');
    expect(await state(promiseForm)).toBe('pending');
    await expect(unaffected).resolves.toBeDefined();
    // `times: 1`: the second pg_sleep went through.
    await expect(callbackForm).resolves.toBeDefined();
    expect(injector.stats()).toMatchObject({
      connect: { calls: 2, hung: 1 },
      query: { calls: 3, hung: 1 },
      hanging: 2,
    });

    injector.heal();
    await expect(connecting).rejects.toThrow('FaultInjector healed');
    await expect(promiseForm).rejects.toThrow('FaultInjector healed');
    expect(injector.stats().hanging).toBe(0);
    expect(pool.connects).toBe(1);
    await expect(client.query('SELECT pg_sleep(1)')).resolves.toBeDefined();
    client.release();
  });

  it('a hung query in callback form gets the healed error through its callback', async () => {
    const injector = new FaultInjector(new FakePool());
    const client = await injector.connect();
    injector.hang('query');
    const hung = queryCb(client, 'SELECT 1');
    expect(await state(hung)).toBe('pending');
    injector.heal();
    await expect(hung).rejects.toThrow('FaultInjector healed');
    client.release();
  });

  it('end() releases hung calls before ending the pool', async () => {
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    injector.hang('connect');
    const connecting = injector.connect();
    await injector.end();
    await expect(connecting).rejects.toThrow('FaultInjector healed');
    expect(pool.ended).toBe(true);
  });
});

describe('FaultInjector validation', () => {
  it('names the bad argument', () => {
    const injector = new FaultInjector(new FakePool());
    expect(() => injector.failConnect('nope' as unknown as Error)).toThrow(TypeError);
    expect(() => injector.failConnect(new Error('x'), { times: 0 })).toThrow(/options\.times/);
    expect(() => injector.failQuery(new Error('x'), { times: 1.5 })).toThrow(/options\.times/);
    expect(() => injector.failQuery(new Error('x'), { match: 3 as unknown as string })).toThrow(
      /options\.match/,
    );
    expect(() => injector.delay('query', -1)).toThrow(/ms must be/);
    expect(() => injector.delay('select' as 'query', 1)).toThrow(/operation must be/);
    expect(() =>
      (injector.hang as (op: string, o: object) => unknown)('connect', { match: 'x' }),
    ).toThrow(/'query' only/);
    expect(() => new FaultInjector({} as FakePool)).toThrow(TypeError);
    expect(injector.stats().faults).toEqual([]);
  });
});

describe('FaultInjector under a ResilientPool', () => {
  it('a refused connect is retried (nothing was sent) and the query succeeds', async () => {
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    const db = new ResilientPool({
      primary: injector,
      logger: false,
      retry: { minTimeout: 0, maxTimeout: 0 },
    });
    try {
      injector.failConnect(() => socketError('ECONNREFUSED'), { times: 1 });
      await expect(db.write('INSERT INTO t VALUES (1)')).resolves.toMatchObject({ rowCount: 1 });
      expect(injector.stats().connect).toMatchObject({ calls: 2, failed: 1 });
      expect(pool.statements).toEqual(['INSERT INTO t VALUES (1)']);
      expect(db.stats().endpoints[0]?.retries).toBe(1);
    } finally {
      await db.end({ timeout: 100 });
    }
  });

  it('a query failure reaches the caller unchanged through the hot path (callback form)', async () => {
    const injector = new FaultInjector(new FakePool());
    const db = new ResilientPool({ primary: injector, logger: false });
    try {
      injector.failQuery(() => pgError('23505'), { match: 'INSERT' });
      await expect(db.write('INSERT INTO t VALUES (1)')).rejects.toMatchObject({ code: '23505' });
      await expect(db.read('SELECT 1')).resolves.toBeDefined();
      expect(injector.stats().query).toMatchObject({ calls: 2, failed: 1 });
      // The client went back to the pool with its own query restored.
      expect(injector.idleCount).toBe(1);
    } finally {
      await db.end({ timeout: 100 });
    }
  });

  it('a hung connect is bounded by the acquire timeout', async () => {
    const pool = new FakePool();
    const injector = new FaultInjector(pool);
    const db = new ResilientPool({
      primary: injector,
      logger: false,
      queue: { acquireTimeout: 100 },
      retry: { retries: 0 },
    });
    try {
      // No idle client (idleCount 0), so the pool arms its acquire timer around connect().
      injector.hang('connect');
      const err = await db.write('SELECT 1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AcquireTimeoutError);
      expect(injector.stats()).toMatchObject({ connect: { hung: 1 }, hanging: 1 });
      injector.heal();
      await expect(db.write('SELECT 1')).resolves.toBeDefined();
      expect(pool.statements).toEqual(['SELECT 1']);
    } finally {
      await db.end({ timeout: 100 });
    }
  });
});
