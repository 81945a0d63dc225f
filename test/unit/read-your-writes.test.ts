import { describe, expect, it } from 'vitest';
import { type ConsistencyToken, consistencyToken } from '../../src/index.js';
import { FakePool } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

/** A primary at `lsn`, and replicas that answer how far they have replayed. */
function cluster(replayed: Record<string, string>) {
  const primary = new FakePool('p');
  let primaryLsn = '0/1000';
  primary.handler = (text) => {
    if (text.includes('pg_current_wal_lsn')) return { rows: [{ lsn: primaryLsn }], rowCount: 1 };
    if (text.startsWith('INSERT')) primaryLsn = '0/2000';
    return { rows: [{ from: 'primary' }], rowCount: 1 };
  };
  const replicas = Object.entries(replayed).map(([name]) => {
    const pool = new FakePool(name);
    pool.handler = (text) =>
      text.includes('pg_last_wal_replay_lsn')
        ? { rows: [{ lsn: replayed[name] }], rowCount: 1 }
        : { rows: [{ from: name }], rowCount: 1 };
    return pool;
  });
  return { primary, replicas };
}

describe('read-your-writes', () => {
  const make = usePools();

  it('write() captures a token on request; read({ after }) goes only to a replica that replayed it', async () => {
    const replayed = { behind: '0/1000', caughtUp: '0/2000' };
    const { primary, replicas } = cluster(replayed);
    const db = make({ primary, replicas, health: { enabled: false } });
    const result = await db.write('INSERT INTO t VALUES (1)', [], { captureToken: true });
    const token = consistencyToken(result);
    expect(token).toBe('0/2000');
    for (let i = 0; i < 6; i++) {
      const { rows } = await db.read('SELECT * FROM t', [], { after: token as ConsistencyToken });
      expect(rows).toEqual([{ from: 'caughtUp' }]);
    }
  });

  it('falls back to the primary after consistencyWaitMs when no replica caught up', async () => {
    const { primary, replicas } = cluster({ r1: '0/1000', r2: '0/1000' });
    const db = make({
      primary,
      replicas,
      health: { enabled: false },
      routing: { consistencyWaitMs: 30 },
    });
    const { rows } = await db.read('SELECT * FROM t', [], { after: '0/2000' as ConsistencyToken });
    expect(rows).toEqual([{ from: 'primary' }]);
  });

  it('waits for a replica that catches up within consistencyWaitMs', async () => {
    const replayed = { r1: '0/1000' };
    const { primary, replicas } = cluster(replayed);
    const db = make({
      primary,
      replicas,
      health: { enabled: false },
      routing: { consistencyWaitMs: 1_000 },
    });
    setTimeout(() => {
      replayed.r1 = '0/2000';
    }, 30);
    const { rows } = await db.read('SELECT * FROM t', [], { after: '0/2000' as ConsistencyToken });
    expect(rows).toEqual([{ from: 'r1' }]);
  });

  it('takes the first replica that answers caught up, without waiting for one that hangs', async () => {
    const { primary, replicas } = cluster({ hung: '0/1000', caughtUp: '0/2000' });
    const hung = replicas[0]!;
    const answer = hung.handler;
    // Its position query never answers (a SIGSTOPped replica the monitor has not noticed yet).
    hung.handler = (text, values, pool) =>
      text.includes('pg_last_wal_replay_lsn') ? new Promise(() => {}) : answer(text, values, pool);
    const db = make({
      primary,
      replicas,
      health: { enabled: false },
      routing: { consistencyWaitMs: 60_000 },
    });
    // Waiting for every answer would hold the read for the whole minute (past the test's timeout).
    const { rows } = await db.read('SELECT * FROM t', [], { after: '0/2000' as ConsistencyToken });
    expect(rows).toEqual([{ from: 'caughtUp' }]);
  });

  it('a session carries its latest token to its reads; outside it nothing changes', async () => {
    const replayed = { behind: '0/1000' };
    const { primary, replicas } = cluster(replayed);
    const db = make({
      primary,
      replicas,
      health: { enabled: false },
      routing: { consistencyWaitMs: 0 },
    });
    const inside = await db.session(async () => {
      await db.write('INSERT INTO t VALUES (1)');
      return (await db.read('SELECT * FROM t')).rows;
    });
    expect(inside).toEqual([{ from: 'primary' }]);
    const outside = (await db.read('SELECT * FROM t')).rows;
    expect(outside).toEqual([{ from: 'behind' }]);
  });

  it('a committed transaction in a session counts too, and onToken receives the token', async () => {
    const { primary, replicas } = cluster({ behind: '0/1000' });
    const db = make({
      primary,
      replicas,
      health: { enabled: false },
      routing: { consistencyWaitMs: 0 },
    });
    const tokens: string[] = [];
    const rows = await db.session(async () => {
      await db.transaction(async (tx) => tx.query('INSERT INTO t VALUES (1)'), {
        onToken: (t) => tokens.push(t),
      });
      return (await db.read('SELECT * FROM t')).rows;
    });
    expect(tokens).toEqual(['0/2000']);
    expect(rows).toEqual([{ from: 'primary' }]);
  });

  it('refuses a malformed token', async () => {
    const { primary, replicas } = cluster({ r: '0/1' });
    const db = make({ primary, replicas, health: { enabled: false } });
    await expect(
      db.read('SELECT 1', [], { after: 'yesterday' as ConsistencyToken }),
    ).rejects.toMatchObject({
      code: 'E_CONFIG',
    });
  });
});
