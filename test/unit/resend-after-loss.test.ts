/**
 * What a statement lost on the wire proves, and what the pool does with it (fake pools, no I/O):
 * a write the socket refused, or one the server answered by ending the session (57P01) before it
 * could commit, had no effect and is re-sent; a read sent to a standby is re-sent elsewhere even
 * when the standby was promoted before the loss; one reset of every connection opens no circuit.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { QueryResultLike } from '../../src/pg-like.js';
import { FakePool } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

const OK: QueryResultLike = { rows: [{ ok: 1 }], rowCount: 1, command: 'INSERT', fields: [] };

/** A FATAL 57P01 as pg reports it: the server ended the session. */
function terminated(message = 'terminating connection due to administrator command'): Error {
  return Object.assign(new Error(message), { code: '57P01', severity: 'FATAL', name: 'error' });
}

/** A socket error as node reports it, from the given system call. */
function reset(syscall: 'read' | 'write'): Error {
  return Object.assign(new Error(`${syscall} ECONNRESET`), {
    code: 'ECONNRESET',
    syscall,
    errno: -104,
  });
}

/** Fails the first `failures` statements matching `match` with `error()`, then answers. */
function failFirst(
  pool: FakePool,
  failures: number,
  error: () => Error,
  match = /INSERT|SELECT|CALL|UPDATE/,
) {
  let left = failures;
  pool.handler = (text) => {
    if (match.test(text) && left > 0) {
      left--;
      throw error();
    }
    return OK;
  };
}

describe('a write that provably had no effect is re-sent', () => {
  const make = usePools();

  function setup() {
    const primary = new FakePool('p');
    const db = make({ primary, health: { enabled: false }, retry: { retries: 2 } });
    const retries: unknown[] = [];
    db.on('retry', (event) => retries.push(event.error));
    return { db, primary, retries };
  }

  it('57P01 answered to a single statement (the session ended before it could commit)', async () => {
    const { db, primary, retries } = setup();
    failFirst(primary, 1, () => terminated());
    await expect(db.write('INSERT INTO t VALUES ($1)', [1])).resolves.toMatchObject({
      rowCount: 1,
    });
    expect(primary.statements.filter((s) => s.startsWith('INSERT'))).toHaveLength(2);
    expect(retries).toHaveLength(1);
  });

  it('57P01 "unexpected postmaster exit" too, and a simple-protocol statement without parameters', async () => {
    const { db, primary } = setup();
    failFirst(primary, 1, () =>
      terminated('terminating connection due to unexpected postmaster exit'),
    );
    await expect(db.write('  -- note\n UPDATE t SET a = 1 WHERE id = 2;')).resolves.toBeDefined();
  });

  it.each([
    [
      'several statements in one string (one may have committed)',
      'INSERT INTO t VALUES (1); COMMIT; INSERT INTO t VALUES (2)',
    ],
    ['a CALL (a procedure may commit inside)', 'CALL do_work()'],
    ['a DO block', 'DO $$ BEGIN PERFORM 1; END $$'],
  ])('not after 57P01 for %s', async (_, text) => {
    const { db, primary, retries } = setup();
    failFirst(primary, 1, () => terminated(), /./);
    await expect(db.write(text)).rejects.toMatchObject({ code: '57P01' });
    expect(primary.statements).toEqual([text]);
    expect(retries).toEqual([]);
  });

  it("a 57P01 that is not the server's own answer (no severity) is not re-sent", async () => {
    const { db, primary } = setup();
    failFirst(primary, 1, () => Object.assign(new Error('57P01'), { code: '57P01' }));
    await expect(db.write('INSERT INTO t VALUES ($1)', [1])).rejects.toMatchObject({
      code: '57P01',
    });
  });

  it('a socket that refused the write (write ECONNRESET): nothing reached the server', async () => {
    const { db, primary } = setup();
    failFirst(primary, 1, () => reset('write'));
    await expect(db.write('INSERT INTO t VALUES ($1)', [1])).resolves.toMatchObject({
      rowCount: 1,
    });
    expect(primary.statements.filter((s) => s.startsWith('INSERT'))).toHaveLength(2);
  });

  it('but a connection reset while the statement was out (read ECONNRESET) is never re-sent', async () => {
    const { db, primary } = setup();
    failFirst(primary, 1, () => reset('read'));
    await expect(db.write('INSERT INTO t VALUES ($1)', [1])).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
    expect(primary.statements.filter((s) => s.startsWith('INSERT'))).toHaveLength(1);
  });
});

describe('a read sent to a standby that was promoted before it failed', () => {
  const make = usePools();
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function answerProbes(
    pool: FakePool,
    state: { recovery: boolean },
    read: () => Promise<QueryResultLike> | QueryResultLike,
  ) {
    pool.handler = (text) => {
      if (!text.includes('pg_is_in_recovery')) return read();
      return {
        rows: [
          {
            in_recovery: state.recovery,
            lsn: '0/3000000',
            receive_lsn: state.recovery ? '0/3000000' : null,
            replay_age_ms: state.recovery ? 60_000 : null,
          },
        ],
        rowCount: 1,
      };
    };
  }

  it('is re-sent on another endpoint: it ran read-only where it was sent', async () => {
    const primary = new FakePool('p');
    const r1 = new FakePool('r1');
    const r2 = new FakePool('r2');
    const r1State = { recovery: true };
    let failRead: ((err: Error) => void) | undefined;
    answerProbes(primary, { recovery: false }, () => OK);
    answerProbes(
      r1,
      r1State,
      () =>
        new Promise<QueryResultLike>((_, reject) => {
          failRead = reject;
        }),
    );
    answerProbes(r2, { recovery: true }, () => OK);
    const db = make({
      primary,
      replicas: [r1, r2],
      routing: { balancer: 'round-robin' },
      health: { intervalMs: 1_000, timeoutMs: 500 },
    });
    await vi.advanceTimersByTimeAsync(1_000); // first probes: both replicas are standbys
    let read: Promise<QueryResultLike> | undefined;
    for (let i = 0; i < 2 && failRead === undefined; i++) {
      read = db.read('SELECT v FROM kv WHERE k = $1', [i]);
      await vi.advanceTimersByTimeAsync(0);
      if (failRead === undefined) await read;
    }
    expect(failRead).toBeDefined();
    // r1 is promoted while the read is out, and its probe says so before the read fails.
    r1State.recovery = false;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(db.stats().endpoints[1]).toMatchObject({ name: 'replica-1' });
    failRead?.(new Error('Connection terminated unexpectedly'));
    await expect(read).resolves.toMatchObject({ rows: [{ ok: 1 }] });
  });
});

describe('one reset of every connection opens no circuit', () => {
  const make = usePools();

  it('reads in flight on every replica lose their connections together, and are re-sent', async () => {
    const primary = new FakePool('p');
    const r1 = new FakePool('r1', 8);
    const r2 = new FakePool('r2', 8);
    let pending: Array<(err: Error) => void> = [];
    let resetting = true;
    const hold = () =>
      resetting
        ? new Promise<QueryResultLike>((_, reject) => {
            pending.push(reject);
          })
        : OK;
    r1.handler = hold;
    r2.handler = hold;
    const db = make({
      primary,
      replicas: [r1, r2],
      routing: { balancer: 'round-robin' },
      health: { enabled: false },
      breaker: { consecutiveFailures: 3 },
      retry: { retries: 2 },
    });
    const breakers: string[] = [];
    db.on('breaker', (e) => breakers.push(`${e.endpoint}:${e.state}`));
    const reads = Array.from({ length: 8 }, (_, i) =>
      db.read('SELECT v FROM kv WHERE k = $1', [i]),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(pending).toHaveLength(8);
    // One event: every connection in flight is reset at the same moment.
    resetting = false;
    const lost = pending;
    pending = [];
    for (const reject of lost) reject(reset('read'));
    await expect(Promise.all(reads)).resolves.toHaveLength(8);
    expect(breakers).toEqual([]);
    expect(db.stats().endpoints.map((e) => e.breaker)).toEqual(['closed', 'closed', 'closed']);
  });

  it('a replica that fails every new connection still opens its circuit', async () => {
    const primary = new FakePool('p');
    const r1 = new FakePool('r1');
    r1.handler = () => {
      throw reset('read');
    };
    const db = make({
      primary,
      replicas: [r1],
      health: { enabled: false },
      breaker: { consecutiveFailures: 3 },
      retry: { retries: 0 },
    });
    for (let i = 0; i < 3; i++) {
      await expect(db.read('SELECT 1')).rejects.toMatchObject({ code: 'ECONNRESET' });
    }
    expect(db.stats().endpoints[1]?.breaker).toBe('open');
  });
});
