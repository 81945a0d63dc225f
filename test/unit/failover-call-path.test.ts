/**
 * Failover buffering on the call path, with fake pools: which calls wait for a primary and which
 * fail, that each buffered call is sent once, in order, to the primary found, and that every wait
 * ends (bufferMs, the call's timeout and signal, end(), the cap). Short real timers; assertions
 * on outcomes and on what each fake server received, never on durations.
 */
import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  CircuitOpenError,
  classify,
  FailoverBufferFullError,
  FailoverTimeoutError,
  PoolClosedError,
  TimeoutError,
} from '../../src/index.js';
import { wasNotSent } from '../../src/retry/policy.js';
import { FakePool, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

/** A fake node that answers pg_is_in_recovery() as a primary or a standby. */
function node(name: string, state: { primary: boolean }, max = 10) {
  const pool = new FakePool(name, max);
  pool.handler = (text) =>
    text.includes('pg_is_in_recovery')
      ? { rows: [{ in_recovery: !state.primary }], rowCount: 1 }
      : { rows: [{ on: name }], rowCount: 1 };
  return pool;
}

const inserts = (pool: FakePool) => pool.statements.filter((s) => s.startsWith('INSERT'));
/** Calls that entered the buffer so far (with candidates, those made while the first discovery ran too). */
const bufferedSoFar = (db: { stats(): { failover?: { bufferedTotal: number } } }) =>
  db.stats().failover?.bufferedTotal ?? 0;
const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
const until = async (what: string, check: () => boolean, ms = 2_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('failover buffering on the call path', () => {
  const make = usePools();

  /** Two candidates; `a` is the primary until `fail()` kills it and promotes `b`. */
  function cluster(options: { maxB?: number } = {}) {
    const stateA = { primary: true };
    const stateB = { primary: false };
    const a = node('a', stateA);
    const b = node('b', stateB, options.maxB);
    return {
      a,
      b,
      /** a refuses connections and is no longer writable. */
      killA() {
        a.connectError = socketError('ECONNREFUSED');
        stateA.primary = false;
      },
      promoteB() {
        stateB.primary = true;
      },
    };
  }

  it('is on by default with candidates: a write refused while the primary dies is sent once, to the promoted one', async () => {
    const c = cluster();
    const db = make({
      primary: [
        { pool: c.a, name: 'a' },
        { pool: c.b, name: 'b' },
      ],
      health: { enabled: false },
      breaker: { consecutiveFailures: 1, resetTimeout: 50 },
      retry: { retries: 0 },
    });
    await db.write('INSERT INTO t VALUES (1)');
    const before = db.stats().failover;
    c.killA();
    c.promoteB();
    // Its connect is refused (nothing sent) and opens the circuit: it waits instead of failing.
    const { rows } = await db.write('INSERT INTO t VALUES (2)');
    expect(rows).toEqual([{ on: 'b' }]);
    expect(inserts(c.a)).toEqual(['INSERT INTO t VALUES (1)']);
    expect(inserts(c.b)).toEqual(['INSERT INTO t VALUES (2)']);
    const after = db.stats().failover;
    expect(after).toMatchObject({ buffered: 0, expired: 0 });
    expect(after!.bufferedTotal - before!.bufferedTotal).toBe(1);
    expect(after!.released - before!.released).toBe(1);
  });

  it('never buffers a write that was on the wire: it fails with the connection error', async () => {
    const c = cluster();
    const db = make({
      primary: [c.a, c.b],
      health: { enabled: false },
      breaker: { consecutiveFailures: 1 },
    });
    await db.write('SELECT 1');
    const before = bufferedSoFar(db);
    c.a.handler = () => {
      c.killA();
      c.promoteB();
      throw new Error('Connection terminated unexpectedly');
    };
    const lost = await settle(db.write('INSERT INTO t VALUES (1)'));
    expect(lost.ok).toBe(false);
    expect(classify((lost as { error: unknown }).error)).toBe('connection');
    // Sent once, to a; never to b.
    expect(inserts(c.b)).toEqual([]);
    expect(bufferedSoFar(db)).toBe(before);
    // The next write finds b.
    expect((await db.write('INSERT INTO t VALUES (2)')).rows).toEqual([{ on: 'b' }]);
  });

  it('buffers a write refused read-only (25006) by a demoted primary, which applied nothing', async () => {
    const c = cluster();
    const db = make({ primary: [c.a, c.b], health: { enabled: false }, retry: { retries: 0 } });
    await db.write('SELECT 1');
    c.killA();
    c.a.connectError = undefined;
    c.promoteB();
    c.a.handler = (text) => {
      if (text.includes('pg_is_in_recovery')) return { rows: [{ in_recovery: true }], rowCount: 1 };
      throw Object.assign(new Error('cannot execute INSERT in a read-only transaction'), {
        code: '25006',
      });
    };
    const { rows } = await db.write('INSERT INTO t VALUES (1)');
    expect(rows).toEqual([{ on: 'b' }]);
    expect(inserts(c.b)).toEqual(['INSERT INTO t VALUES (1)']);
  });

  it('holds writes made while the circuit is open and sends them in the order they came', async () => {
    const c = cluster({ maxB: 1 });
    const db = make({
      primary: [
        { pool: c.a, name: 'a' },
        { pool: c.b, name: 'b' },
      ],
      health: { enabled: false },
      // Each half-open probe fails on a, re-opens the circuit, and so asks the candidates again.
      breaker: { consecutiveFailures: 1, resetTimeout: 50 },
      retry: { retries: 0 },
      queue: { maxWaiting: 2 },
    });
    await db.write('SELECT 1');
    const before = bufferedSoFar(db);
    c.killA();
    // b is not promoted yet: the discovery the open circuit starts finds nothing writable.
    const first = settle(db.write('INSERT INTO t VALUES (0)'));
    await until('the circuit to open', () => db.stats().endpoints[0]?.breaker === 'open');
    // Far more than b's one connection and two places in its queue.
    const burst = Array.from({ length: 30 }, (_, i) =>
      settle(db.write(`INSERT INTO t VALUES (${i + 1})`)),
    );
    await until('all to be buffered', () => bufferedSoFar(db) - before === 31);
    c.promoteB();
    const outcomes = await Promise.all([first, ...burst]);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(inserts(c.b)).toEqual(
      Array.from({ length: 31 }, (_, i) => `INSERT INTO t VALUES (${i})`),
    );
    expect(db.stats().failover).toMatchObject({ buffered: 0, expired: 0, refusedFull: 0 });
    expect(db.stats().endpoints[0]?.rejected['queue-full']).toBe(0);
  });

  it('with a single primary it is off by default: the refusal comes at once', async () => {
    const p = new FakePool('p');
    const db = make({
      primary: p,
      health: { enabled: false },
      breaker: { consecutiveFailures: 1 },
      retry: { retries: 0 },
    });
    p.connectError = socketError('ECONNREFUSED');
    await expect(db.write('INSERT INTO t VALUES (1)')).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    await expect(db.write('INSERT INTO t VALUES (2)')).rejects.toBeInstanceOf(CircuitOpenError);
    expect(db.stats().failover).toBeUndefined();
  });

  it('a single primary with bufferMs: the half-open probe is the oldest buffered call, then the rest go in order', async () => {
    const p = new FakePool('p', 1);
    const db = make({
      primary: p,
      health: { enabled: false },
      breaker: { consecutiveFailures: 1, resetTimeout: 100 },
      retry: { retries: 0 },
      failover: { bufferMs: 5_000 },
    });
    await db.write('SELECT 1');
    p.connectError = socketError('ECONNREFUSED');
    const calls = [settle(db.write('INSERT INTO t VALUES (0)'))];
    await until('the circuit to open', () => db.stats().endpoints[0]?.breaker === 'open');
    for (let i = 1; i < 5; i++) calls.push(settle(db.write(`INSERT INTO t VALUES (${i})`)));
    // The server restarts (or the address now leads to a new primary).
    p.connectError = undefined;
    const outcomes = await Promise.all(calls);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(inserts(p)).toEqual([0, 1, 2, 3, 4].map((i) => `INSERT INTO t VALUES (${i})`));
    expect(db.stats().endpoints[0]?.breaker).toBe('closed');
  });

  it('a primary that never comes back: each call fails after bufferMs with FailoverTimeoutError, nothing sent', async () => {
    const p = new FakePool('p');
    const db = make({
      primary: p,
      health: { enabled: false },
      breaker: { consecutiveFailures: 1, resetTimeout: 30 },
      retry: { retries: 0 },
      failover: { bufferMs: 150 },
    });
    await db.write('SELECT 1');
    p.connectError = socketError('ECONNREFUSED');
    const outcomes = await Promise.all(
      [1, 2, 3].map((i) => settle(db.write(`INSERT INTO t VALUES (${i})`))),
    );
    for (const o of outcomes) {
      expect(o.ok).toBe(false);
      const error = (o as { error: unknown }).error;
      expect(error).toBeInstanceOf(FailoverTimeoutError);
      expect(error).toMatchObject({
        code: 'E_FAILOVER_TIMEOUT',
        endpoint: 'primary',
        bufferMs: 150,
      });
      // Why it waited: the connect the server refused, or the circuit that then refused it.
      expect(['ECONNREFUSED', 'E_CIRCUIT_OPEN']).toContain(
        ((error as Error).cause as { code?: string }).code,
      );
      expect(classify(error)).toBe('unavailable');
      expect(wasNotSent(error)).toBe(true);
    }
    expect(inserts(p)).toEqual([]);
    // The half-open probes in between were let out and came back: each call ended once, expired.
    expect(db.stats().failover).toMatchObject({ buffered: 0, bufferedTotal: 3, expired: 3 });
  });

  it("honours the call's timeout and signal while buffered", async () => {
    const p = new FakePool('p');
    const db = make({
      primary: p,
      health: { enabled: false },
      breaker: { consecutiveFailures: 1, resetTimeout: 60_000 },
      retry: { retries: 0 },
      failover: { bufferMs: 60_000 },
    });
    await db.write('SELECT 1');
    p.connectError = socketError('ECONNREFUSED');
    await settle(db.write('SELECT 1', [], { timeout: 50 }));
    const timedOut = await settle(db.write('INSERT INTO t VALUES (1)', [], { timeout: 50 }));
    expect((timedOut as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    const controller = new AbortController();
    const aborted = settle(db.write('INSERT INTO t VALUES (2)', [], { signal: controller.signal }));
    controller.abort(new Error('request gone'));
    expect(((await aborted) as { error: unknown }).error).toBeInstanceOf(AbortedError);
    const tx = await settle(db.transaction(async (t) => t.query('SELECT 1'), { timeout: 50 }));
    expect((tx as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    expect(inserts(p)).toEqual([]);
    expect(db.stats().failover).toMatchObject({ buffered: 0, aborted: 4 });
  });

  it('end() fails buffered calls with PoolClosedError at once; nothing is sent after', async () => {
    const p = new FakePool('p');
    const db = make({
      primary: p,
      health: { enabled: false },
      breaker: { consecutiveFailures: 1, resetTimeout: 60_000 },
      retry: { retries: 0 },
      failover: { bufferMs: 60_000 },
    });
    await db.write('SELECT 1');
    p.connectError = socketError('ECONNREFUSED');
    const calls = [1, 2].map((i) => settle(db.write(`INSERT INTO t VALUES (${i})`)));
    calls.push(settle(db.transaction(async (t) => t.query('INSERT INTO t VALUES (3)'))));
    await until('all to be buffered', () => db.stats().failover?.buffered === 3);
    await db.end({ timeout: 1_000 });
    for (const o of await Promise.all(calls)) {
      expect((o as { error: unknown }).error).toBeInstanceOf(PoolClosedError);
    }
    p.connectError = undefined;
    expect(inserts(p)).toEqual([]);
    expect(db.stats().failover).toMatchObject({ buffered: 0, drained: 3 });
  });

  it('refuses at once with FailoverBufferFullError past maxBuffered', async () => {
    const p = new FakePool('p');
    const db = make({
      primary: p,
      health: { enabled: false },
      breaker: { consecutiveFailures: 1, resetTimeout: 60_000 },
      retry: { retries: 0 },
      failover: { bufferMs: 60_000, maxBuffered: 2 },
    });
    await db.write('SELECT 1');
    p.connectError = socketError('ECONNREFUSED');
    const held = [1, 2].map((i) => settle(db.write(`INSERT INTO t VALUES (${i})`)));
    await until('two to be buffered', () => db.stats().failover?.buffered === 2);
    const refused = await settle(db.write('INSERT INTO t VALUES (3)'));
    const error = (refused as { error: unknown }).error;
    expect(error).toBeInstanceOf(FailoverBufferFullError);
    expect(error).toMatchObject({ maxBuffered: 2 });
    // Why the buffered calls wait: the refused connect, or the open circuit.
    expect(['ECONNREFUSED', 'E_CIRCUIT_OPEN']).toContain(
      ((error as Error).cause as { code?: string }).code,
    );
    expect(db.stats().failover?.refusedFull).toBe(1);
    await db.end({ timeout: 100 });
    await Promise.all(held);
  });

  it("a transaction's checkout waits too: BEGIN, its statements and COMMIT go once, to the new primary", async () => {
    const c = cluster();
    const db = make({
      primary: [c.a, c.b],
      health: { enabled: false },
      breaker: { consecutiveFailures: 1 },
      retry: { retries: 0 },
    });
    await db.write('SELECT 1');
    c.killA();
    c.promoteB();
    const result = await db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES (1)');
      return 'done';
    });
    expect(result).toBe('done');
    expect(c.b.statements.filter((s) => !s.includes('pg_is_in_recovery'))).toEqual([
      'BEGIN',
      'INSERT INTO t VALUES (1)',
      'COMMIT',
    ]);
    expect(inserts(c.a)).toEqual([]);
  });

  it('a transaction whose BEGIN lost its connection runs again on the new primary; fn ran once', async () => {
    const c = cluster();
    const db = make({
      primary: [c.a, c.b],
      health: { enabled: false },
      breaker: { consecutiveFailures: 1 },
    });
    await db.write('SELECT 1');
    const normal = c.a.handler;
    c.a.handler = (text, values, pool) => {
      if (text !== 'BEGIN') return normal(text, values, pool);
      // The server dies as BEGIN goes out.
      c.killA();
      c.promoteB();
      throw new Error('Connection terminated unexpectedly');
    };
    let runs = 0;
    await db.transaction(async (tx) => {
      runs++;
      await tx.query('INSERT INTO t VALUES (1)');
    });
    expect(runs).toBe(1);
    expect(inserts(c.a)).toEqual([]);
    expect(inserts(c.b)).toEqual(['INSERT INTO t VALUES (1)']);
  });

  it('a transaction that lost its connection after fn began is not run again', async () => {
    const c = cluster();
    const db = make({
      primary: [c.a, c.b],
      health: { enabled: false },
      breaker: { consecutiveFailures: 1 },
    });
    await db.write('SELECT 1');
    const normal = c.a.handler;
    c.a.handler = (text, values, pool) => {
      if (!text.startsWith('INSERT')) return normal(text, values, pool);
      c.killA();
      c.promoteB();
      throw new Error('Connection terminated unexpectedly');
    };
    let runs = 0;
    const outcome = await settle(
      db.transaction(async (tx) => {
        runs++;
        await tx.query('INSERT INTO t VALUES (1)');
      }),
    );
    expect(outcome.ok).toBe(false);
    expect(runs).toBe(1);
    expect(inserts(c.b)).toEqual([]);
  });
});
