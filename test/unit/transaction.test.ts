import { describe, expect, it, vi } from 'vitest';
import { TimeoutError, TransactionOutcomeUnknownError } from '../../src/index.js';
import { FakePool, pgError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

const make = usePools();

describe('transaction()', () => {
  it('re-runs the whole of fn after a serialization failure and tells fn the attempt', async () => {
    const primary = new FakePool('p');
    let failures = 1;
    primary.handler = (text) => {
      if (text.startsWith('UPDATE') && failures-- > 0) throw pgError('40001');
      return { rows: [], rowCount: 1, command: text.split(' ')[0] };
    };
    const db = make({ primary });
    const attempts: number[] = [];
    const result = await db.transaction(
      async (tx, { attempt }) => {
        attempts.push(attempt);
        expect(tx.attempt).toBe(attempt);
        await tx.query('UPDATE a SET x = x + 1');
        return 'done';
      },
      { isolation: 'serializable' },
    );
    expect(result).toBe('done');
    expect(attempts).toEqual([1, 2]);
    expect(primary.statements).toEqual([
      'BEGIN ISOLATION LEVEL SERIALIZABLE',
      'UPDATE a SET x = x + 1',
      'ROLLBACK',
      'BEGIN ISOLATION LEVEL SERIALIZABLE',
      'UPDATE a SET x = x + 1',
      'COMMIT',
    ]);
  });

  it.each(['40001', '40P01', '55P03'])(
    'retries %s up to `retries`, then throws the last error with attempts',
    async (code) => {
      const primary = new FakePool('p');
      primary.handler = (text) => {
        if (text.startsWith('UPDATE')) throw pgError(code);
        return { rows: [], rowCount: 0 };
      };
      const db = make({ primary });
      const retries: number[] = [];
      db.on('retry', (e) => retries.push(e.attempt));
      const err = await db
        .transaction(async (tx) => tx.query('UPDATE a SET x = 1'), { retries: 2 })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code, attempts: 3 });
      expect(retries).toEqual([2, 3]);
      expect(primary.statements.filter((s) => s === 'BEGIN')).toHaveLength(3);
    },
  );

  it('does not retry other errors and passes them through unchanged', async () => {
    const primary = new FakePool('p');
    const unique = pgError('23505');
    primary.handler = (text) => {
      if (text.startsWith('INSERT')) throw unique;
      return { rows: [], rowCount: 0 };
    };
    const db = make({ primary });
    await expect(db.transaction(async (tx) => tx.query('INSERT INTO t VALUES (1)'))).rejects.toBe(
      unique,
    );
    expect(primary.statements).toEqual(['BEGIN', 'INSERT INTO t VALUES (1)', 'ROLLBACK']);
  });

  it('treats a COMMIT answered with ROLLBACK (fn swallowed an error) as that error, and re-runs a conflict', async () => {
    const primary = new FakePool('p');
    let conflicts = 1;
    primary.handler = (text) => {
      if (text.startsWith('UPDATE') && conflicts-- > 0) throw pgError('40001');
      if (text === 'COMMIT')
        return { rows: [], rowCount: 0, command: conflicts >= 0 ? 'ROLLBACK' : 'COMMIT' };
      return { rows: [], rowCount: 1 };
    };
    const db = make({ primary });
    let runs = 0;
    await db.transaction(async (tx) => {
      runs++;
      await tx.query('UPDATE a SET x = 1').catch(() => {}); // swallowed
    });
    expect(runs).toBe(2);
  });

  it('a COMMIT answered with ROLLBACK reports the first error fn swallowed, not a later 25P02', async () => {
    const primary = new FakePool('p');
    const unique = pgError('23505');
    primary.handler = (text) => {
      if (text.startsWith('INSERT')) throw unique;
      if (text.startsWith('UPDATE')) throw pgError('25P02');
      if (text === 'COMMIT') return { rows: [], rowCount: 0, command: 'ROLLBACK' };
      return { rows: [], rowCount: 0 };
    };
    const db = make({ primary });
    const err = await db
      .transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES (1)').catch(() => {});
        await tx.query('UPDATE t SET x = 1').catch(() => {});
      })
      .catch((e: unknown) => e);
    expect(err).toBe(unique);
  });

  it('never re-runs after the connection is lost during COMMIT', async () => {
    const primary = new FakePool('p');
    primary.handler = (text) => {
      if (text === 'COMMIT') throw new Error('Connection terminated unexpectedly');
      return { rows: [], rowCount: 0 };
    };
    const db = make({ primary });
    let runs = 0;
    const err = await db.transaction(async () => runs++).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionOutcomeUnknownError);
    expect((err as TransactionOutcomeUnknownError).endpoint).toBe('primary');
    expect(runs).toBe(1);
  });

  it('nests with savepoints: an inner failure rolls back to the savepoint only', async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES (1)');
      await tx
        .transaction(async (inner) => {
          await inner.query('INSERT INTO t VALUES (2)');
          throw new Error('inner failed');
        })
        .catch(() => {});
      await tx.transaction(async (inner) => inner.query('INSERT INTO t VALUES (3)'));
    });
    expect(primary.statements).toEqual([
      'BEGIN',
      'INSERT INTO t VALUES (1)',
      'SAVEPOINT resilient_pool_sp_1',
      'INSERT INTO t VALUES (2)',
      'ROLLBACK TO SAVEPOINT resilient_pool_sp_1',
      'SAVEPOINT resilient_pool_sp_2',
      'INSERT INTO t VALUES (3)',
      'RELEASE SAVEPOINT resilient_pool_sp_2',
      'COMMIT',
    ]);
  });

  it('a timeout rejects with TimeoutError, never commits, and discards the connection', async () => {
    const primary = new FakePool('p');
    let finishSleep: () => void = () => {};
    primary.handler = (text) =>
      text === 'SELECT pg_sleep(10)'
        ? new Promise((resolve) => {
            finishSleep = () => resolve({ rows: [], rowCount: 0 });
          })
        : { rows: [], rowCount: 0 };
    const db = make({ primary });
    const err = await db
      .transaction(async (tx) => tx.query('SELECT pg_sleep(10)'), { timeout: 30 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    finishSleep();
    await new Promise((r) => setTimeout(r, 10));
    expect(primary.statements).not.toContain('COMMIT');
    expect(db.stats().endpoints[0]?.inFlight).toBe(0);
  });
});

describe('connection hygiene', () => {
  it('rolls back a transaction left open on a client from connect()', async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    const client = await db.connect();
    await client.query('BEGIN');
    await client.query('INSERT INTO t VALUES (1)');
    client.release();
    await new Promise((r) => setImmediate(r));
    expect(primary.statements).toEqual(['BEGIN', 'INSERT INTO t VALUES (1)', 'ROLLBACK']);
    expect(db.stats().endpoints[0]?.inFlight).toBe(0);
    expect(() => client.release()).toThrow(/already been released/);
  });

  it('rolls back a BEGIN sent through query() before the client goes back to the pool', async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    await db.query('BEGIN');
    expect(primary.statements).toEqual(['BEGIN', 'ROLLBACK']);
  });

  it("resetOnRelease: 'discard' after a transaction left open: ROLLBACK, then DISCARD ALL", async () => {
    const primary = new FakePool('p');
    const db = make({ primary, resetOnRelease: 'discard' });
    const client = await db.connect();
    await client.query('BEGIN');
    client.release();
    await new Promise((r) => setImmediate(r));
    expect(primary.statements).toEqual(['BEGIN', 'ROLLBACK', 'DISCARD ALL']);
  });

  it("resetOnRelease: 'discard' resets the session of connect() clients", async () => {
    const primary = new FakePool('p');
    const db = make({ primary, resetOnRelease: 'discard' });
    const client = await db.connect();
    await client.query("SET search_path = 'tenant_1'");
    client.release();
    await new Promise((r) => setImmediate(r));
    expect(primary.statements).toEqual(["SET search_path = 'tenant_1'", 'DISCARD ALL']);
  });

  it('validate.idleAfter replaces dead idle clients before use, invisibly', async () => {
    const primary = new FakePool('p');
    const db = make({ primary, validate: { idleAfter: 0 }, retry: { retries: 0 } });
    await Promise.all([db.write('SELECT 1'), db.write('SELECT 1')]);
    primary.killIdle();
    primary.statements.length = 0;
    await expect(db.write('INSERT INTO t VALUES (1)')).resolves.toBeDefined();
    expect(primary.statements.filter((s) => s.startsWith('INSERT'))).toHaveLength(1);
  });

  it('without validation a dead idle client fails a write (which is not re-sent)', async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    await db.write('SELECT 1');
    primary.killIdle();
    await expect(db.write('INSERT INTO t VALUES (1)')).rejects.toThrow('Connection terminated');
  });

  it('validate.primaryWritable refuses a read-only primary and counts it against the circuit', async () => {
    const primary = new FakePool('p');
    primary.handler = (text) =>
      text.includes('transaction_read_only')
        ? { rows: [{ ro: 'on' }], rowCount: 1 }
        : { rows: [], rowCount: 1 };
    const db = make({ primary, validate: { primaryWritable: true }, retry: { retries: 0 } });
    await expect(db.write('INSERT INTO t VALUES (1)')).rejects.toMatchObject({ code: '25006' });
    expect(db.stats().endpoints[0]?.failures).toBe(1);
    expect(primary.statements.some((s) => s.startsWith('INSERT'))).toBe(false);
  });

  it('leakDetection reports a client held past the threshold, with the acquiring stack', async () => {
    vi.useFakeTimers();
    const primary = new FakePool('p');
    const db = make({ primary, leakDetection: { threshold: 1_000 } });
    const leaks: Array<{ endpoint: string; heldMs: number; acquiredAt: string }> = [];
    db.on('leak', (e) => leaks.push(e));
    const client = await db.connect();
    await vi.advanceTimersByTimeAsync(999);
    expect(leaks).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(leaks).toHaveLength(1);
    expect(leaks[0]).toMatchObject({ endpoint: 'primary', heldMs: 1_000 });
    expect(leaks[0]?.acquiredAt).toContain('transaction.test.ts');
    client.release();
    const other = await db.connect();
    other.release();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(leaks).toHaveLength(1);
  });
});

describe('call timeouts', () => {
  it("the caller's own timeouts never count against the endpoint's circuit", async () => {
    const primary = new FakePool('p');
    primary.handler = () => new Promise(() => {});
    const db = make({ primary, breaker: { consecutiveFailures: 2, volumeThreshold: 1 } });
    for (let i = 0; i < 5; i++) {
      await expect(db.read('SELECT 1', [], { timeout: 5 })).rejects.toBeInstanceOf(TimeoutError);
    }
    expect(db.stats().endpoints[0]?.breaker).toBe('closed');
  });

  it('connect({ timeout }) bounds the wait for a client', async () => {
    const primary = new FakePool('p');
    primary.connectHangs = true;
    const db = make({ primary, queue: { acquireTimeout: 60_000 } });
    await expect(db.connect({ timeout: 20 })).rejects.toBeInstanceOf(TimeoutError);
  });

  it('a timeout ends a queued call with TimeoutError and frees its place', async () => {
    const primary = new FakePool('p', 1);
    primary.connectHangs = true;
    const db = make({ primary, queue: { acquireTimeout: 60_000 } });
    db.write('SELECT 1').catch(() => {});
    const err = await db.write('SELECT 2', [], { timeout: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(db.waitingCount).toBe(0);
  });

  it('a timeout during a statement rejects at once and discards the client when it answers', async () => {
    const primary = new FakePool('p');
    let answer: () => void = () => {};
    primary.handler = () =>
      new Promise((resolve) => {
        answer = () => resolve({ rows: [], rowCount: 0 });
      });
    const db = make({ primary });
    await expect(db.read('SELECT pg_sleep(10)', [], { timeout: 20 })).rejects.toBeInstanceOf(
      TimeoutError,
    );
    answer();
    await new Promise((r) => setImmediate(r));
    expect(primary.idleCount).toBe(0); // destroyed, not reused
  });
});
