import { describe, expect, it } from 'vitest';
import type { ResilientPoolEvents } from '../../src/index.js';
import type { PgClientLike } from '../../src/pg-like.js';
import {
  CandidatePrimary,
  NoWritableCandidateError,
} from '../../src/routing/primary-candidates.js';
import { FakePool, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

/** A fake node that answers pg_is_in_recovery() as a primary or a standby. */
function node(name: string, state: { primary: boolean }) {
  const pool = new FakePool(name);
  pool.handler = (text) =>
    text.includes('pg_is_in_recovery')
      ? { rows: [{ in_recovery: !state.primary }], rowCount: 1 }
      : { rows: [{ on: name }], rowCount: 1 };
  return pool;
}

describe('primary candidates', () => {
  const make = usePools();

  it('finds the writable candidate at start, and writes wait for the answer', async () => {
    const a = node('a', { primary: false });
    const b = node('b', { primary: true });
    const db = make({ primary: [a, b], health: { enabled: false } });
    const failovers: Array<ResilientPoolEvents['failover']> = [];
    db.on('failover', (e) => failovers.push(e));
    const { rows } = await db.write('INSERT INTO t VALUES (1)');
    expect(rows).toEqual([{ on: 'b' }]);
    expect(a.statements.filter((s) => s.startsWith('INSERT'))).toEqual([]);
    expect(failovers).toEqual([{ from: 'primary-1', to: 'primary-2' }]);
  });

  it('moves writes to the promoted candidate when the primary circuit opens, sending each once (without failover buffering)', async () => {
    const stateA = { primary: true };
    const stateB = { primary: false };
    const a = node('a', stateA);
    const b = node('b', stateB);
    const db = make({
      primary: [
        { pool: a, name: 'a' },
        { pool: b, name: 'b' },
      ],
      health: { enabled: false },
      breaker: { consecutiveFailures: 1 },
      retry: { retries: 0 },
      // The write the failure happened to is buffered otherwise (failover-call-path.test.ts).
      failover: { bufferMs: 0 },
    });
    await db.write('INSERT INTO t VALUES (1)');
    // Failover: a dies, b is promoted.
    a.connectError = socketError('ECONNREFUSED');
    stateA.primary = false;
    stateB.primary = true;
    await expect(db.write('INSERT INTO t VALUES (2)')).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    const { rows } = await db.write('INSERT INTO t VALUES (3)');
    expect(rows).toEqual([{ on: 'b' }]);
    expect(b.statements.filter((s) => s.startsWith('INSERT'))).toEqual([
      'INSERT INTO t VALUES (3)',
    ]);
    expect(db.stats().endpoints[0]?.breaker).toBe('closed');
  });

  it('a primary answering 25006 (demoted) triggers discovery too (without failover buffering)', async () => {
    const stateA = { primary: true };
    const stateB = { primary: false };
    const a = node('a', stateA);
    const b = node('b', stateB);
    const db = make({
      primary: [a, b],
      health: { enabled: false },
      retry: { retries: 0 },
      failover: { bufferMs: 0 },
    });
    await db.write('SELECT 1');
    stateA.primary = false;
    stateB.primary = true;
    a.handler = (text) => {
      if (text.includes('pg_is_in_recovery')) return { rows: [{ in_recovery: true }], rowCount: 1 };
      throw Object.assign(new Error('cannot execute INSERT in a read-only transaction'), {
        code: '25006',
      });
    };
    await expect(db.write('INSERT INTO t VALUES (1)')).rejects.toMatchObject({ code: '25006' });
    const { rows } = await db.write('INSERT INTO t VALUES (2)');
    expect(rows).toEqual([{ on: 'b' }]);
  });

  it('a connect that completes after the probe gave up goes back to its pool healthy, not destroyed', async () => {
    /** A node whose connects complete only when `open()` is called (a server that was frozen). */
    class LateNode extends FakePool {
      private opened: () => void = () => {};
      private readonly gate = new Promise<void>((resolve) => {
        this.opened = resolve;
      });
      open(): void {
        this.opened();
      }
      override connect(): Promise<PgClientLike>;
      override connect(
        callback: (
          err: Error | undefined,
          client: PgClientLike | undefined,
          done: () => void,
        ) => void,
      ): void;
      override connect(
        callback?: (
          err: Error | undefined,
          client: PgClientLike | undefined,
          done: () => void,
        ) => void,
      ): Promise<PgClientLike> | undefined {
        const late = this.gate.then(() => super.connect());
        if (!callback) return late;
        late.then(
          (client) => callback(undefined, client, () => client.release()),
          (err: Error) => callback(err, undefined, () => {}),
        );
        return undefined;
      }
    }
    const pool = new LateNode('late');
    pool.handler = node('late', { primary: true }).handler;
    const candidates = new CandidatePrimary([{ name: 'late', pool }], 20, () => {});
    await expect(candidates.discover()).rejects.toBeInstanceOf(NoWritableCandidateError);
    pool.open();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pool.totalCount).toBe(1);
    expect(pool.idleCount).toBe(1);
    // It is handed out again and answers: the next discovery finds the candidate writable.
    await expect(candidates.discover()).resolves.toMatchObject({ name: 'late' });
    expect(pool.totalCount).toBe(1);
  });

  it('validates the candidate list', async () => {
    const { resolveOptions } = await import('../../src/options/pool.js');
    expect(() => resolveOptions({ primary: [] })).toThrow(/must not be empty/);
    const p = new FakePool('p');
    expect(() => resolveOptions({ primary: [p, p] })).toThrow(/same pool object/);
  });
});
