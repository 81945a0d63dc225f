/**
 * Regressions found in review: aborts and deadlines at awkward moments (during ROLLBACK, during a
 * connection check), cache invalidation after an aborted write, and deadlines of cached reads
 * that wait on another caller's fill.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/index.js';
import { FakePool, pgError, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const settleWithin = <T>(p: Promise<T>, ms: number) =>
  Promise.race([
    p.then(
      (v) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e }),
    ),
    delay(ms).then(() => 'still pending' as const),
  ]);

describe('review regressions', () => {
  const make = usePools();

  it('a transaction abandoned while its ROLLBACK runs never returns the connection to the pool', async () => {
    const primary = new FakePool('p');
    const controller = new AbortController();
    primary.handler = async (text) => {
      if (text.startsWith('INSERT')) throw pgError('23505');
      if (text === 'ROLLBACK') {
        setTimeout(() => controller.abort(), 5);
        await delay(40);
      }
      return { rows: [], rowCount: 0, command: text.split(' ')[0] };
    };
    const db = make({ primary });
    await expect(
      db.transaction(async (tx) => tx.query('INSERT INTO t VALUES (1)'), {
        signal: controller.signal,
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await delay(80);
    expect(primary.idleCount).toBe(0); // destroyed, not pooled
  });

  it('a write aborted while it runs still invalidates its cache tags (it may have committed)', async () => {
    const primary = new FakePool('p');
    let value = 1;
    primary.handler = async (text) => {
      if (text.startsWith('UPDATE')) {
        await delay(40);
        value = 2;
        return { rows: [], rowCount: 1, command: 'UPDATE' };
      }
      return { rows: [{ value }], rowCount: 1, command: 'SELECT' };
    };
    const db = make({ primary, cache: { store: new MemoryStore(), ttl: 60_000 } });
    const read = () => db.read('SELECT value FROM t', [], { cache: { tags: ['t'] } });
    await read();
    await delay(10);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 10);
    await expect(
      db.write('UPDATE t SET value = 2', [], { invalidates: ['t'], signal: controller.signal }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await delay(60);
    expect((await read()).rows).toEqual([{ value: 2 }]);
  });

  it('a deadline that passes during a connection check stops the statement from being sent', async () => {
    const primary = new FakePool('p');
    const db = make({ primary, validate: { idleAfter: 0 }, retry: { retries: 0 } });
    await db.query('SELECT 0');
    primary.handler = async (text) => {
      if (text === 'SELECT 1') await delay(60);
      return { rows: [{ x: 1 }], rowCount: 1 };
    };
    const outcome = await settleWithin(db.write('UPDATE t SET x = 1', [], { timeout: 20 }), 1_000);
    expect(outcome).toMatchObject({ ok: false, e: { code: 'E_TIMEOUT' } });
    await delay(80);
    expect(primary.statements).not.toContain('UPDATE t SET x = 1');
  });

  it('the replacement connect after a failed check is bounded by the call deadline', async () => {
    const primary = new FakePool('p');
    const db = make({ primary, validate: { idleAfter: 0 }, retry: { retries: 0 } });
    await db.query('SELECT 0');
    primary.handler = (text, _values, pool) => {
      if (text === 'SELECT 1') {
        pool.connectHangs = true;
        throw socketError('ECONNRESET');
      }
      return { rows: [], rowCount: 0 };
    };
    expect(await settleWithin(db.read('SELECT 42', [], { timeout: 50 }), 1_000)).toMatchObject({
      ok: false,
    });
  });

  it("a cached read does not inherit another caller's timeout, and keeps its own", async () => {
    const primary = new FakePool('p');
    primary.handler = async () => {
      await delay(100);
      return { rows: [{ x: 1 }], rowCount: 1, command: 'SELECT' };
    };
    const db = make({ primary, cache: { store: new MemoryStore(), ttl: 10_000 } });
    const leader = db.read('SELECT x FROM t', [], { cache: true, timeout: 20 });
    const follower = db.read('SELECT x FROM t', [], { cache: true });
    await expect(leader).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    await expect(follower).resolves.toMatchObject({ rows: [{ x: 1 }] });

    const slow = db.read('SELECT y FROM t', [], { cache: true });
    const impatient = await settleWithin(
      db.read('SELECT y FROM t', [], { cache: true, timeout: 20 }),
      80,
    );
    expect(impatient).toMatchObject({ ok: false, e: { code: 'E_TIMEOUT' } });
    await slow;
  });
});
