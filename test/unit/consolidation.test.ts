/**
 * Query consolidation: the state machine (Consolidator), its key, and the read path through a
 * ResilientPool over fake pools. Every test issues its calls in one turn of the event loop and
 * settles the shared execution by hand, so which call joins which execution is exact.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AbortedError, MemoryStore, type QueryResultLike, TimeoutError } from '../../src/index.js';
import { Consolidator, consolidationKey, copyResult } from '../../src/pool/consolidation.js';
import { FakePool, pgError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** An execution the test settles, and the signals it was started with. */
function executions() {
  const started: Array<{ signal: AbortSignal | undefined; answer: Deferred<QueryResultLike> }> = [];
  const execute = (signal: AbortSignal | undefined) => {
    const answer = deferred<QueryResultLike>();
    started.push({ signal, answer });
    return answer.promise;
  };
  return { started, execute };
}

const result = (): QueryResultLike => ({
  rows: [
    { id: 1, tags: ['a'] },
    { id: 2, tags: ['b'] },
  ],
  rowCount: 2,
  command: 'SELECT',
  fields: [{ name: 'id' }, { name: 'tags' }],
});

/** Settles every promise callback queued so far (fake timers leave microtasks alone). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Consolidator', () => {
  it('N identical calls share one execution; every caller gets its own rows', async () => {
    const c = new Consolidator(100);
    const { started, execute } = executions();
    const calls = Array.from({ length: 5 }, () => c.run('k', undefined, undefined, execute));
    expect(started).toHaveLength(1);
    expect(c.stats()).toEqual({ consolidated: 4, overCap: 0, inFlight: 1 });
    const original = result();
    started[0]!.answer.resolve(original);
    const answers = await Promise.all(calls);
    // The first caller gets pg's own object; the others copies, equal and detached.
    expect(answers[0]).toBe(original);
    for (const a of answers.slice(1)) {
      expect(a).toEqual(original);
      expect(a).not.toBe(original);
      expect(a.rows).not.toBe(original.rows);
      expect(a.rows[0]).not.toBe(original.rows[0]);
    }
    answers[1]!.rows.pop();
    (answers[2]!.rows[0] as { id: number }).id = 99;
    expect(original.rows).toHaveLength(2);
    expect(answers[3]!.rows).toEqual(original.rows);
    // Column values are shared (documented): a deep copy costs more than the statement saved.
    expect(answers[3]!.rows[0]!.tags).toBe(original.rows[0]!.tags);
    expect(c.stats()).toEqual({ consolidated: 4, overCap: 0, inFlight: 0 });
  });

  it('a call after the answer runs again: nothing outlives the execution', async () => {
    const c = new Consolidator(100);
    const { started, execute } = executions();
    const first = c.run('k', undefined, undefined, execute);
    started[0]!.answer.resolve(result());
    await first;
    const second = c.run('k', undefined, undefined, execute);
    expect(started).toHaveLength(2);
    started[1]!.answer.resolve(result());
    await second;
    expect(c.stats().consolidated).toBe(0);
  });

  it('different keys run separately', async () => {
    const c = new Consolidator(100);
    const { started, execute } = executions();
    const a = c.run('a', undefined, undefined, execute);
    const b = c.run('b', undefined, undefined, execute);
    expect(started).toHaveLength(2);
    started[1]!.answer.resolve({ rows: [{ v: 'b' }], rowCount: 1 });
    started[0]!.answer.resolve({ rows: [{ v: 'a' }], rowCount: 1 });
    expect((await a).rows).toEqual([{ v: 'a' }]);
    expect((await b).rows).toEqual([{ v: 'b' }]);
    expect(c.stats()).toEqual({ consolidated: 0, overCap: 0, inFlight: 0 });
  });

  it('a joiner that aborts leaves at once; the execution goes on for the others', async () => {
    const c = new Consolidator(100);
    const { started, execute } = executions();
    const leader = new AbortController();
    const joiner = new AbortController();
    const first = c.run('k', leader.signal, undefined, execute);
    const leaving = c.run('k', joiner.signal, undefined, execute);
    const staying = c.run('k', undefined, undefined, execute);
    joiner.abort();
    await expect(leaving).rejects.toBeInstanceOf(AbortedError);
    expect(started[0]!.signal?.aborted).toBe(false);
    started[0]!.answer.resolve(result());
    expect((await first).rows).toHaveLength(2);
    expect((await staying).rows).toHaveLength(2);
    // Aborting after the answer changes nothing.
    leader.abort();
    expect(c.stats()).toEqual({ consolidated: 2, overCap: 0, inFlight: 0 });
  });

  it('the caller that started it may leave too: the others still get the answer', async () => {
    const c = new Consolidator(100);
    const { started, execute } = executions();
    const leader = new AbortController();
    const first = c.run('k', leader.signal, undefined, execute);
    const second = c.run('k', undefined, undefined, execute);
    leader.abort(new Error('client went away'));
    await expect(first).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(started[0]!.signal?.aborted).toBe(false);
    const original = result();
    started[0]!.answer.resolve(original);
    // The first caller still waiting gets the original.
    expect(await second).toBe(original);
  });

  it('the last caller to leave cancels the execution; a later call does not join it', async () => {
    const c = new Consolidator(100);
    const { started, execute } = executions();
    const a = new AbortController();
    const b = new AbortController();
    const first = c.run('k', a.signal, undefined, execute);
    const second = c.run('k', b.signal, undefined, execute);
    a.abort();
    expect(started[0]!.signal?.aborted).toBe(false);
    b.abort('gone');
    expect(started[0]!.signal?.aborted).toBe(true);
    expect(started[0]!.signal?.reason).toBe('gone');
    await expect(first).rejects.toBeInstanceOf(AbortedError);
    await expect(second).rejects.toBeInstanceOf(AbortedError);
    expect(c.stats().inFlight).toBe(0);
    const third = c.run('k', undefined, undefined, execute);
    expect(started).toHaveLength(2);
    // The cancelled execution's late answer reaches nobody and leaves the new one alone.
    started[0]!.answer.reject(new AbortedError(undefined, 'gone'));
    await flush();
    expect(c.stats().inFlight).toBe(1);
    started[1]!.answer.resolve(result());
    expect((await third).rows).toHaveLength(2);
  });

  it('a starting call without a signal never leaves, so its execution gets no signal', async () => {
    const c = new Consolidator(100);
    const { started, execute } = executions();
    const first = c.run('k', undefined, undefined, execute);
    const joiner = new AbortController();
    const second = c.run('k', joiner.signal, undefined, execute);
    expect(started[0]!.signal).toBeUndefined();
    joiner.abort();
    await expect(second).rejects.toBeInstanceOf(AbortedError);
    started[0]!.answer.resolve(result());
    expect((await first).rows).toHaveLength(2);
  });

  it("a timeout reason reaches the caller as the call's TimeoutError", async () => {
    const c = new Consolidator(100);
    const { execute } = executions();
    const deadline = new AbortController();
    const first = c.run('k', undefined, undefined, execute);
    const second = c.run('k', deadline.signal, undefined, execute);
    const timeout = new TimeoutError(50);
    deadline.abort(timeout);
    await expect(second).rejects.toBe(timeout);
    void first;
  });

  describe('timeouts (fake timers)', () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    it("a caller's timeout ends its wait only; the last one's cancels with TimeoutError", async () => {
      const c = new Consolidator(100);
      const { started, execute } = executions();
      const short = c.run('k', undefined, 10, execute).catch((err: unknown) => err);
      const long = c.run('k', undefined, 20, execute).catch((err: unknown) => err);
      // A starter that can leave gives the execution a signal.
      expect(started[0]!.signal).toBeDefined();
      await vi.advanceTimersByTimeAsync(10);
      expect(await short).toMatchObject({ code: 'E_TIMEOUT' });
      expect(started[0]!.signal?.aborted).toBe(false);
      await vi.advanceTimersByTimeAsync(10);
      expect(await long).toBeInstanceOf(TimeoutError);
      expect(started[0]!.signal?.reason).toBeInstanceOf(TimeoutError);
      expect(c.stats().inFlight).toBe(0);
    });

    it('an answer before the timeout clears every timer and listener', async () => {
      const c = new Consolidator(100);
      const { started, execute } = executions();
      const signal = new AbortController();
      const calls = [
        c.run('k', signal.signal, 1_000, execute),
        c.run('k', undefined, 2_000, execute),
      ];
      expect(vi.getTimerCount()).toBe(2);
      started[0]!.answer.resolve(result());
      await Promise.all(calls);
      expect(vi.getTimerCount()).toBe(0);
      // Neither the timers nor a late abort reach anyone.
      signal.abort();
      await vi.advanceTimersByTimeAsync(5_000);
      expect(started[0]!.signal?.aborted).toBe(false);
    });
  });

  it('an already aborted call neither joins nor starts anything', async () => {
    const c = new Consolidator(100);
    const { started, execute } = executions();
    const first = c.run('k', undefined, undefined, execute);
    await expect(c.run('k', AbortSignal.abort(), undefined, execute)).rejects.toBeInstanceOf(
      AbortedError,
    );
    await expect(c.run('other', AbortSignal.abort(), undefined, execute)).rejects.toBeInstanceOf(
      AbortedError,
    );
    expect(started).toHaveLength(1);
    expect(c.stats()).toEqual({ consolidated: 0, overCap: 0, inFlight: 1 });
    started[0]!.answer.resolve(result());
    await first;
  });

  it("the execution's failure reaches every caller still waiting, the same error", async () => {
    const c = new Consolidator(100);
    const { started, execute } = executions();
    const calls = Array.from({ length: 4 }, () => c.run('k', undefined, undefined, execute));
    const failure = pgError('57014', 'canceling statement due to statement timeout');
    started[0]!.answer.reject(failure);
    for (const call of calls) await expect(call).rejects.toBe(failure);
    expect(c.stats().inFlight).toBe(0);
  });

  it('an execute that throws rejects every caller instead of throwing', async () => {
    const c = new Consolidator(100);
    const boom = new Error('boom');
    const call = c.run('k', undefined, undefined, () => {
      throw boom;
    });
    await expect(call).rejects.toBe(boom);
    expect(c.stats().inFlight).toBe(0);
  });

  it('cap: beyond maxWaiters a call starts its own execution, which later calls join', async () => {
    const c = new Consolidator(2);
    const { started, execute } = executions();
    const calls = Array.from({ length: 3 }, () => c.run('k', undefined, undefined, execute));
    expect(started).toHaveLength(1);
    const fourth = c.run('k', undefined, undefined, execute);
    expect(started).toHaveLength(2);
    const fifth = c.run('k', undefined, undefined, execute);
    expect(started).toHaveLength(2);
    expect(c.stats()).toEqual({ consolidated: 3, overCap: 1, inFlight: 1 });
    // The full execution answering does not end the one that replaced it.
    started[0]!.answer.resolve({ rows: [{ n: 1 }], rowCount: 1 });
    for (const call of calls) expect((await call).rows).toEqual([{ n: 1 }]);
    const sixth = c.run('k', undefined, undefined, execute);
    expect(started).toHaveLength(2);
    started[1]!.answer.resolve({ rows: [{ n: 2 }], rowCount: 1 });
    for (const call of [fourth, fifth, sixth]) expect((await call).rows).toEqual([{ n: 2 }]);
    expect(c.stats()).toEqual({ consolidated: 4, overCap: 1, inFlight: 0 });
  });

  it('cap counts callers still waiting: one that left frees its place', async () => {
    const c = new Consolidator(1);
    const { started, execute } = executions();
    const first = c.run('k', undefined, undefined, execute);
    const joiner = new AbortController();
    const second = c.run('k', joiner.signal, undefined, execute);
    joiner.abort();
    await expect(second).rejects.toBeInstanceOf(AbortedError);
    const third = c.run('k', undefined, undefined, execute);
    expect(started).toHaveLength(1);
    started[0]!.answer.resolve(result());
    await Promise.all([first, third]);
    expect(c.stats()).toEqual({ consolidated: 2, overCap: 0, inFlight: 0 });
  });
});

describe('consolidationKey', () => {
  const key = (text: Parameters<typeof consolidationKey>[1], values?: unknown[]) =>
    consolidationKey('replica', text, values, false);

  it('keys parameters as pg sends them', () => {
    expect(key('SELECT $1', [1])).toBe(key('SELECT $1', ['1']));
    expect(key('SELECT $1', [null])).toBe(key('SELECT $1', [undefined]));
    expect(key('SELECT $1', [1])).not.toBe(key('SELECT $1', [2]));
    expect(key('SELECT $1', ['a,b'])).not.toBe(key('SELECT $1', [['a', 'b']]));
    expect(key('SELECT $1', [Buffer.from('x')])).not.toBe(key('SELECT $1', ['x']));
    // pg sends both with the simple protocol.
    expect(key('SELECT 1', [])).toBe(key('SELECT 1'));
  });

  it('separates the endpoint class, idempotent, rowMode, binary, name and types', () => {
    const base = key('SELECT 1');
    expect(consolidationKey('primary', 'SELECT 1', undefined, false)).not.toBe(base);
    expect(consolidationKey('replica', 'SELECT 1', undefined, true)).not.toBe(base);
    expect(key({ text: 'SELECT 1' })).toBe(base);
    expect(key({ text: 'SELECT 1', rowMode: 'array' })).not.toBe(base);
    expect(key({ text: 'SELECT 1', binary: true } as never)).not.toBe(base);
    expect(key({ text: 'SELECT 1', name: 'one' })).not.toBe(base);
    const types = { getTypeParser: () => String };
    expect(key({ text: 'SELECT 1', types })).toBe(key({ text: 'SELECT 1', types }));
    expect(key({ text: 'SELECT 1', types })).not.toBe(
      key({ text: 'SELECT 1', types: { getTypeParser: () => String } }),
    );
  });

  it('values given apart win over the config values, as in pg', () => {
    expect(key({ text: 'SELECT $1', values: [1] }, [2])).toBe(key('SELECT $1', [2]));
  });

  it('cannot be confused by separators inside the text or the values', () => {
    expect(key('SELECT $1', ['a\u00002:b'])).not.toBe(key('SELECT $1', ['a']));
    expect(key('SELECT 1\u0000', [])).not.toBe(key('SELECT 1', ['']));
  });

  it('refuses what must reach pg as it is', () => {
    expect(key({ text: 'SELECT 1', rows: 10 } as never)).toBeUndefined();
    expect(key({ text: 'SELECT 1', portal: 'p' } as never)).toBeUndefined();
    expect(key({ text: 'SELECT 1', callback: () => {} } as never)).toBeUndefined();
    expect(key({} as never)).toBeUndefined();
    expect(key('SELECT $1', [{ n: 1n }])).toBeUndefined();
    const circular = {
      toPostgres(): unknown {
        return circular;
      },
    };
    expect(key('SELECT $1', [circular])).toBeUndefined();
    expect(consolidationKey('replica', 'SELECT $1', 'not an array' as never, false)).toBe(
      undefined,
    );
  });

  it('holds a long key as a hash, never the parameter text', () => {
    const big = 'x'.repeat(10_000);
    const k = key('SELECT $1', [big]) as string;
    expect(k.length).toBeLessThan(100);
    expect(k).not.toContain('xxxx');
    expect(key('SELECT $1', [big])).toBe(k);
    expect(key('SELECT $1', [`${big}y`])).not.toBe(k);
  });
});

describe('copyResult', () => {
  it('keeps the prototype of the result and of rows of a class; copies array rows', () => {
    class Result {
      rows: unknown[] = [[1, 2]];
      rowCount = 1;
    }
    class Row {
      constructor(readonly id: number) {}
    }
    const arrays = new Result();
    const copy = copyResult(arrays) as Result;
    expect(copy).toBeInstanceOf(Result);
    expect(copy.rows[0]).toEqual([1, 2]);
    expect(copy.rows[0]).not.toBe(arrays.rows[0]);
    const classed = { rows: [new Row(1)], rowCount: 1 };
    expect((copyResult(classed) as typeof classed).rows[0]).toBeInstanceOf(Row);
    expect(copyResult(undefined)).toBeUndefined();
    const many = [result(), result()];
    const copies = copyResult(many) as QueryResultLike[];
    expect(copies).toEqual(many);
    expect(copies[0]).not.toBe(many[0]);
  });
});

describe('read() with consolidation', () => {
  const make = usePools();

  /** A replica whose statements answer when the test says so. */
  function held() {
    const primary = new FakePool('p');
    const replica = new FakePool('r1');
    const answers: Array<Deferred<QueryResultLike>> = [];
    replica.handler = () => {
      const d = deferred<QueryResultLike>();
      answers.push(d);
      return d.promise;
    };
    return { primary, replica, answers };
  }

  it('is off by default: identical reads each run', async () => {
    const { primary, replica, answers } = held();
    const db = make({ primary, replicas: [replica], health: { enabled: false } });
    const calls = Array.from({ length: 3 }, () => db.read('SELECT * FROM t WHERE id = $1', [1]));
    await flush();
    expect(replica.statements).toHaveLength(3);
    for (const a of answers) a.resolve(result());
    await Promise.all(calls);
    expect(db.stats().consolidation).toEqual({ consolidated: 0, overCap: 0, inFlight: 0 });
  });

  it('pool-wide: N identical reads, one statement; different values run apart', async () => {
    const { primary, replica, answers } = held();
    const db = make({
      primary,
      replicas: [replica],
      health: { enabled: false },
      consolidation: true,
    });
    const same = Array.from({ length: 5 }, () => db.read('SELECT * FROM t WHERE id = $1', [1]));
    const other = db.read('SELECT * FROM t WHERE id = $1', [2]);
    const sameAsPgSendsIt = db.read('SELECT * FROM t WHERE id = $1', ['1']);
    await flush();
    expect(replica.statements).toHaveLength(2);
    for (const a of answers) a.resolve(result());
    const rows = await Promise.all([...same, other, sameAsPgSendsIt]);
    expect(rows.every((r) => r.rows.length === 2)).toBe(true);
    expect(db.stats().consolidation).toEqual({ consolidated: 5, overCap: 0, inFlight: 0 });
  });

  it('per call: consolidate: true with the option off, consolidate: false with it on', async () => {
    const { primary, replica, answers } = held();
    const off = make({ primary, replicas: [replica], health: { enabled: false } });
    const joined = [1, 2, 3].map(() => off.read('SELECT 1', [], { consolidate: true }));
    const alone = off.read('SELECT 1', []);
    await flush();
    expect(replica.statements).toHaveLength(2);
    for (const a of answers.splice(0)) a.resolve(result());
    await Promise.all([...joined, alone]);

    const on = make({
      primary: new FakePool('p2'),
      replicas: [replica],
      health: { enabled: false },
      consolidation: { maxWaiters: 10 },
    });
    const optedOut = [1, 2].map(() => on.read('SELECT 1', [], { consolidate: false }));
    await flush();
    expect(replica.statements).toHaveLength(4);
    for (const a of answers.splice(0)) a.resolve(result());
    await Promise.all(optedOut);
  });

  it('never for a statement the classifier says may write, nor in a session, nor with after or cache', async () => {
    const primary = new FakePool('p');
    const replica = new FakePool('r1');
    const db = make({
      primary,
      replicas: [replica],
      health: { enabled: false },
      consolidation: true,
      cache: { store: new MemoryStore() },
    });
    const twice = (read: () => Promise<unknown>) => Promise.all([read(), read()]);
    await twice(() => db.read("SELECT nextval('s')"));
    await twice(() => db.read('SELECT * FROM t FOR UPDATE'));
    await db.session(() => twice(() => db.read('SELECT * FROM t')));
    expect(replica.statements).toHaveLength(6);
    // The cache coalesces its own reads; consolidation stays out of its way.
    await twice(() => db.read('SELECT * FROM cached', [], { cache: true }));
    // write() and query() never consolidate.
    await twice(() => db.write('SELECT 1'));
    await twice(() => db.query('SELECT 1'));
    expect(primary.statements).toHaveLength(4);
    expect(db.stats().consolidation.consolidated).toBe(0);

    // With a token on a pool without replicas the read goes to the primary: a shared execution
    // might have started before the caller's write committed.
    const alone = new FakePool('alone');
    const single = make({ primary: alone, health: { enabled: false }, consolidation: true });
    await twice(() => single.read('SELECT * FROM t', [], { after: '0/10' as never }));
    await single.session(() => twice(() => single.read('SELECT * FROM t')));
    expect(alone.statements).toHaveLength(4);
    await twice(() => single.read('SELECT * FROM t'));
    expect(alone.statements).toHaveLength(5);
    expect(single.stats().consolidation.consolidated).toBe(1);
  });

  it('a joiner mutating its rows never changes what another caller sees', async () => {
    const { primary, replica, answers } = held();
    const db = make({
      primary,
      replicas: [replica],
      health: { enabled: false },
      consolidation: true,
    });
    const [a, b] = [1, 2].map(() => db.read<{ id: number }>('SELECT id FROM t'));
    await flush();
    answers[0]!.resolve(result());
    const first = await a!;
    first.rows.reverse();
    first.rows[0]!.id = 42;
    const second = await b!;
    expect(second.rows.map((r) => r.id)).toEqual([1, 2]);
  });

  describe('with fake timers', () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    it("a joiner's timeout ends its own wait; the statement runs on for the others", async () => {
      const { primary, replica, answers } = held();
      const db = make({
        primary,
        replicas: [replica],
        health: { enabled: false },
        consolidation: true,
      });
      const patient = db.read('SELECT 1');
      const hasty = db.read('SELECT 1', [], { timeout: 50 }).catch((err: unknown) => err);
      await vi.advanceTimersByTimeAsync(50);
      expect(await hasty).toBeInstanceOf(TimeoutError);
      expect(replica.statements).toHaveLength(1);
      answers[0]!.resolve(result());
      expect((await patient).rows).toHaveLength(2);
      expect(db.stats().consolidation).toEqual({ consolidated: 1, overCap: 0, inFlight: 0 });
    });

    it('when every caller has timed out the statement is abandoned; the next read runs anew', async () => {
      const { primary, replica, answers } = held();
      const db = make({
        primary,
        replicas: [replica],
        health: { enabled: false },
        consolidation: true,
      });
      const calls = [30, 60].map((timeout) =>
        db.read('SELECT 1', [], { timeout }).catch((err: unknown) => err),
      );
      await vi.advanceTimersByTimeAsync(30);
      expect(db.stats().consolidation.inFlight).toBe(1);
      await vi.advanceTimersByTimeAsync(30);
      for (const call of calls) expect(await call).toBeInstanceOf(TimeoutError);
      expect(db.stats().consolidation.inFlight).toBe(0);
      const next = db.read('SELECT 1');
      await vi.advanceTimersByTimeAsync(0);
      expect(replica.statements).toHaveLength(2);
      answers[1]!.resolve(result());
      expect((await next).rows).toHaveLength(2);
    });

    it('a failure of the shared statement reaches every caller, typed as pg sent it', async () => {
      const { primary, replica, answers } = held();
      const db = make({
        primary,
        replicas: [replica],
        health: { enabled: false },
        consolidation: true,
      });
      const calls = [1, 2, 3].map(() =>
        db.read('SELECT * FROM missing').catch((err: unknown) => err),
      );
      await vi.advanceTimersByTimeAsync(0);
      answers[0]!.reject(pgError('42P01', 'relation "missing" does not exist'));
      const errors = await Promise.all(calls);
      for (const err of errors) expect(err).toMatchObject({ code: '42P01' });
      expect(replica.statements).toHaveLength(1);
    });
  });

  it('a read after end() is refused even while an identical one is in flight', async () => {
    const { primary, replica, answers } = held();
    const db = make({
      primary,
      replicas: [replica],
      health: { enabled: false },
      consolidation: true,
    });
    const running = db.read('SELECT 1').catch((err: unknown) => err);
    await flush();
    const ending = db.end({ timeout: 1_000 });
    await expect(db.read('SELECT 1')).rejects.toMatchObject({ code: 'E_POOL_CLOSED' });
    answers[0]!.resolve(result());
    await running;
    await ending;
  });

  it('rejects a consolidate option that is not a boolean, and a bad pool option', () => {
    const primary = new FakePool('p');
    const db = make({ primary, health: { enabled: false } });
    return Promise.all([
      expect(db.read('SELECT 1', [], { consolidate: 'yes' as never })).rejects.toThrow(
        "read(): option 'consolidate' has an invalid value",
      ),
      expect(() => make({ primary, consolidation: 'on' as never })).toThrow(
        'consolidation: must be true, false or an object',
      ),
      expect(() =>
        make({ primary, consolidation: { maxWaiters: 0, maxWaiter: 5 } as never }),
      ).toThrow(
        /consolidation.maxWaiters: must be an integer from 1.*\n?.*consolidation.maxWaiter/s,
      ),
    ]);
  });
});
