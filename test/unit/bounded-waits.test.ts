/**
 * Waits that must stay bounded by the call's timeout and the acquire timeout, found by an
 * adversarial review: asking replicas where they have replayed to, connection checks and their
 * replacements, and the token query after a COMMIT. Fake pools, short real timeouts; the
 * assertions are on outcomes (what settled, with which code), never on durations.
 */
import { describe, expect, it } from 'vitest';
import type { ConsistencyToken } from '../../src/index.js';
import { FakePool } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

const OK = { rows: [{ ok: 1 }], rowCount: 1, command: 'SELECT', fields: [] };
const NEVER = () => new Promise<never>(() => {});

/** Settles `p` or reports that it hung, after `ms`. */
function within<T>(p: Promise<T>, ms = 2_000): Promise<T | 'hung'> {
  return Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms))]);
}

describe('bounded waits', () => {
  const make = usePools();

  it('a read after a token honours its timeout while a replica does not say where it is', async () => {
    const primary = new FakePool('p');
    const replica = new FakePool('r');
    replica.handler = (text) => (text.includes('pg_last_wal_replay_lsn') ? NEVER() : OK);
    const db = make({ primary, replicas: [replica], health: { enabled: false } });
    const read = db
      .read('SELECT 1', [], { after: '0/5000000' as ConsistencyToken, timeout: 200 })
      .catch((err: unknown) => err);
    // Either the primary served it after the consistency wait, or it timed out: never a hang.
    const outcome = await within(read);
    expect(outcome).not.toBe('hung');
    if (outcome instanceof Error) expect(outcome).toMatchObject({ code: 'E_TIMEOUT' });
  });

  it('a connection check that never answers ends with the call timeout', async () => {
    const primary = new FakePool('p', 4);
    let hang = false;
    primary.handler = (text) => (hang && text === 'SELECT 1' ? NEVER() : OK);
    const db = make({ primary, health: { enabled: false }, validate: { idleAfter: 0 } });
    await Promise.all(Array.from({ length: 4 }, () => db.write('SELECT warm')));
    hang = true;
    const outcome = await within(
      db.write('SELECT x', [], { timeout: 100 }).catch((e) => e),
      800,
    );
    expect(outcome).toMatchObject({ code: 'E_TIMEOUT' });
  });

  it('checks and their replacements share one acquire deadline', async () => {
    const primary = new FakePool('p', 6);
    let hang = false;
    primary.handler = (text) => (hang && text === 'SELECT 1' ? NEVER() : OK);
    const db = make({
      primary,
      health: { enabled: false },
      retry: { retries: 0 },
      validate: { idleAfter: 0, timeout: 150 },
      queue: { acquireTimeout: 300 },
    });
    await Promise.all(Array.from({ length: 6 }, () => db.write('SELECT warm')));
    hang = true;
    // Six idle clients, each check would take 150 ms: without one deadline, 6 x 150 ms.
    const outcome = await within(
      db.write('SELECT y').catch((e) => e),
      700,
    );
    expect(outcome).not.toBe('hung');
  });

  it('a transaction whose COMMIT was answered is not reported as unknown when the deadline fires during its token query', async () => {
    const primary = new FakePool('p');
    primary.handler = (text) => {
      if (text.startsWith('COMMIT')) return { ...OK, command: 'COMMIT' };
      if (text.includes('pg_current_wal_lsn')) return NEVER();
      return OK;
    };
    const db = make({ primary, health: { enabled: false } });
    const tokens: string[] = [];
    const outcome = await within(
      db.transaction(async (tx) => (await tx.query('INSERT INTO t VALUES (1)')).rowCount, {
        timeout: 200,
        onToken: (t) => tokens.push(t),
      }),
    );
    expect(outcome).toBe(1);
    expect(tokens).toEqual([]);
  });
});
