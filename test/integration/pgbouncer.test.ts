/**
 * ResilientPool behind a real PgBouncer (test/support/pgbouncer.ts), in transaction and in session
 * pooling: what works as without it, what session state does in each mode, what
 * `resetOnRelease: 'discard'` does in each, and the repair of stale named statements (26000,
 * 0A000) by preparing them once more. docs/pgbouncer.md describes what these tests show.
 *
 * In transaction mode PgBouncer lends a server connection per transaction (a statement outside
 * one is its own transaction) and takes the most recently used idle one (server_round_robin = 0,
 * LIFO). The tests use that to put two clients on chosen server connections: a client that opens
 * a transaction takes the server connection the previous statement ran on, so the next statement
 * of anyone else lands on another. Health probes are off in these tests so that no probe moves a
 * server connection in between.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';
import {
  type PgBouncerHandle,
  type PoolMode,
  TRACKS_PREPARED_STATEMENTS,
  usePgBouncer,
} from '../support/pgbouncer.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 1 });

/** One PgBouncer per mode, each with a database for the primary and one for the replica. */
function bouncerFor(poolMode: PoolMode): PgBouncerHandle {
  return usePgBouncer(handle, (cluster) => ({
    poolMode,
    databases: { primary: cluster.primary, replica: cluster.replicas[0]! },
    defaultPoolSize: 4,
    settings: {
      server_round_robin: 0,
      // PgBouncer 1.21+: track named statements per server connection in transaction mode.
      ...(TRACKS_PREPARED_STATEMENTS ? { max_prepared_statements: 100 } : {}),
    },
  }));
}

/**
 * Started inside the 'through PgBouncer' block, so that the test without PgBouncer at the end
 * of the file runs (and is not skipped) where no PgBouncer is installed.
 */
const bouncers = {} as Record<'transaction' | 'session', PgBouncerHandle>;

const open: ResilientPool<pg.Pool>[] = [];
const plain: pg.Pool[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 2_000 })));
  await Promise.all(plain.splice(0).map((p) => p.end().catch(() => {})));
});

/** A ResilientPool through `mode`'s PgBouncer, one connection per endpoint unless told. */
function makeDb(
  mode: 'transaction' | 'session',
  options: Omit<Partial<ResilientPoolOptions>, 'primary' | 'replicas'> = {},
  max = 1,
): { db: ResilientPool<pg.Pool>; retries: unknown[] } {
  const bouncer = bouncers[mode].bouncer;
  const db = new ResilientPool<pg.Pool>({
    primary: bouncer.createPool('primary', { max }),
    replicas: [bouncer.createPool('replica', { max })],
    logger: false,
    health: { enabled: false },
    retry: { minTimeout: 0, maxTimeout: 0 },
    ...options,
  });
  const retries: unknown[] = [];
  db.on('retry', (event) => retries.push(event.error));
  open.push(db);
  return { db, retries };
}

/** A plain pg.Pool through `mode`'s PgBouncer: another application sharing the pooler. */
function otherClient(mode: 'transaction' | 'session'): pg.Pool {
  const pool = bouncers[mode].bouncer.createPool('primary', { max: 1 });
  plain.push(pool);
  return pool;
}

const BACKEND = 'SELECT pg_backend_pid() AS pid';
const TENANT = "SELECT current_setting('app.tenant', true) AS tenant, pg_backend_pid() AS pid";

async function pid(client: pg.ClientBase | pg.Pool): Promise<number> {
  return (await client.query<{ pid: number }>(BACKEND)).rows[0]!.pid;
}

const codeOf = (err: unknown) => (err as { code?: unknown }).code;

describe('through PgBouncer', () => {
  bouncers.transaction = bouncerFor('transaction');
  bouncers.session = bouncerFor('session');

  describe.each(['transaction', 'session'] as const)('%s mode', (mode) => {
    it('routes reads to the replica and writes to the primary; transactions are atomic', async () => {
      const { db } = makeDb(mode, { health: { enabled: true, intervalMs: 200 } }, 2);
      const who = 'SELECT pg_is_in_recovery() AS standby';
      expect((await db.read<{ standby: boolean }>(who)).rows).toEqual([{ standby: true }]);
      expect((await db.write<{ standby: boolean }>(who)).rows).toEqual([{ standby: false }]);
      // Probes pass through PgBouncer too.
      await until('both endpoints probed healthy', () =>
        db.stats().endpoints.every((e) => e.health === 'healthy'),
      );

      const table = `pgb_atomic_${mode}`;
      await db.write(`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY)`);
      await db.transaction(async (tx) => {
        await tx.query(`INSERT INTO ${table} VALUES (1)`);
        await tx.query(`INSERT INTO ${table} VALUES (2)`);
      });
      await expect(
        db.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${table} VALUES (3)`);
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      const { rows } = await db.write<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`);
      expect(rows).toEqual([{ id: 1 }, { id: 2 }]);
    });

    it("pg's statement_timeout (and options) startup parameters are refused by PgBouncer", async () => {
      const bouncer = bouncers[mode].bouncer;
      for (const [config, parameter] of [
        [{ statement_timeout: 1_000 }, 'statement_timeout'],
        [{ options: '-c statement_timeout=1000' }, 'options'],
      ] as const) {
        const refusing = bouncer.createPool('primary', { max: 1, ...config });
        await expect(refusing.query('SELECT 1')).rejects.toMatchObject({
          code: '08P01',
          message: `unsupported startup parameter: ${parameter}`,
        });
        await refusing.end();
      }
      // pg's client-side query_timeout is no startup parameter: it works as without PgBouncer.
      const clientSide = bouncer.createPool('primary', { max: 1, query_timeout: 1_000 });
      await expect(clientSide.query('SELECT 1 AS one')).resolves.toMatchObject({
        rows: [{ one: 1 }],
      });
      await clientSide.end();
    });

    it("a call's timeout cancels the statement on the server through PgBouncer", async () => {
      const { db } = makeDb(mode);
      const sleep = `SELECT pg_sleep(5) AS pgb_cancel_${mode}`;
      await expect(db.write(sleep, [], { timeout: 200 })).rejects.toMatchObject({
        code: 'E_TIMEOUT',
      });
      // The CancelRequest went through PgBouncer to the server: the statement is not running.
      const admin = new pg.Client(handle.cluster.primary.url);
      await admin.connect();
      try {
        await until(
          'the cancelled statement to be gone',
          async () => {
            const { rows } = await admin.query<{ n: number }>(
              "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query = $1",
              [sleep],
            );
            return rows[0]!.n === 0;
          },
          { timeoutMs: 2_000 },
        );
      } finally {
        await admin.end();
      }
    });

    it('SET LOCAL inside transaction() holds for that transaction, in both modes', async () => {
      const { db } = makeDb(mode);
      const seen = await db.transaction(async (tx) => {
        await tx.query("SET LOCAL app.tenant = 't1'");
        return (await tx.query<{ tenant: string }>(TENANT)).rows[0]!.tenant;
      });
      expect(seen).toBe('t1');
      const after = await db.write<{ tenant: string | null }>(TENANT);
      expect(after.rows[0]!.tenant ?? '').toBe('');
    });

    if (mode === 'session') {
      it('SET on a connect() client sticks, and reaches the next user unless resetOnRelease discards it', async () => {
        for (const resetOnRelease of ['none', 'discard'] as const) {
          const { db } = makeDb(mode, { resetOnRelease });
          const client = await db.connect();
          await client.query("SET app.tenant = 't1'");
          await otherClient(mode).query('SELECT 1'); // another client in between changes nothing
          expect((await client.query<{ tenant: string }>(TENANT)).rows[0]!.tenant).toBe('t1');
          client.release();
          // One pooled connection to PgBouncer, one server connection behind it in session mode.
          const next = await db.connect();
          const { tenant } = (await next.query<{ tenant: string | null }>(TENANT)).rows[0]!;
          next.release();
          expect({ resetOnRelease, tenant: tenant ?? '' }).toEqual({
            resetOnRelease,
            tenant: resetOnRelease === 'none' ? 't1' : '',
          });
        }
      });

      it('advisory locks and LISTEN live on the connection; discard releases them', async () => {
        const { db } = makeDb(mode, { resetOnRelease: 'discard' });
        const other = otherClient(mode);
        const client = await db.connect();
        const notified: string[] = [];
        client.on('notification', (msg) => notified.push(msg.payload ?? ''));
        await client.query('SELECT pg_advisory_lock(4201)');
        await client.query('LISTEN pgb_session');
        const locked = await other.query('SELECT pg_try_advisory_lock(4201) AS got');
        expect(locked.rows).toEqual([{ got: false }]);
        await other.query("NOTIFY pgb_session, 'hello'");
        await until('the notification', () => notified.length > 0);
        expect(notified).toEqual(['hello']);
        client.release(); // DISCARD ALL: unlock all, UNLISTEN *
        await until('the lock to be released by DISCARD ALL', async () => {
          const { rows } = await other.query<{ got: boolean }>(
            'SELECT pg_try_advisory_lock(4201) AS got',
          );
          return rows[0]!.got;
        });
        await other.query('SELECT pg_advisory_unlock(4201)');
      });

      it('named prepared statements are parsed once per connection and reused', async () => {
        const { db } = makeDb(mode);
        const client = await db.connect();
        const named = { name: 'pgb_by_n', text: 'SELECT $1::int AS n' };
        for (const n of [1, 2, 3]) {
          expect((await client.query({ ...named, values: [n] })).rows).toEqual([{ n }]);
        }
        const prepared = await client.query<{ name: string }>(
          "SELECT name FROM pg_prepared_statements WHERE name = 'pgb_by_n'",
        );
        client.release();
        expect(prepared.rows).toEqual([{ name: 'pgb_by_n' }]);
      });

      it("resetOnRelease 'discard' makes pg forget the named statements it deallocated (no 26000)", async () => {
        const { db, retries } = makeDb(mode, { resetOnRelease: 'discard' });
        const named = { name: 'pgb_after_discard', text: 'SELECT $1::int AS n' };
        const client = await db.connect();
        await client.query({ ...named, values: [1] });
        client.release(); // DISCARD ALL deallocates it on the server, and pg forgets it too
        await expect(db.write({ ...named, values: [2] })).resolves.toMatchObject({
          rows: [{ n: 2 }],
        });
        expect(retries.map(codeOf)).toEqual([]);
      });
    }

    if (mode === 'transaction') {
      it('SET on a connect() client does not stick: the next statement may run on another server', async () => {
        const { db } = makeDb(mode);
        const other = otherClient(mode);
        const client = await db.connect();
        try {
          await client.query("SET app.tenant = 't1'");
          const setOn = await pid(client);
          // The other client's transaction takes the server connection the SET ran on.
          const holder = await other.connect();
          try {
            await holder.query('BEGIN');
            expect(await pid(holder)).toBe(setOn);
            const { rows } = await client.query<{ tenant: string | null; pid: number }>(TENANT);
            expect(rows[0]!.pid).not.toBe(setOn);
            expect(rows[0]!.tenant ?? '').toBe('');
            // ... and the other application now runs with our setting.
            const leaked = await holder.query<{ tenant: string }>(TENANT);
            expect(leaked.rows[0]!.tenant).toBe('t1');
          } finally {
            await holder.query('ROLLBACK');
            holder.release();
          }
        } finally {
          client.release();
        }
      });

      it('session advisory locks stay on the server connection, LISTEN hears nothing', async () => {
        const { db } = makeDb(mode);
        const other = otherClient(mode);
        const client = await db.connect();
        const notified: string[] = [];
        client.on('notification', (msg) => notified.push(msg.payload ?? ''));
        try {
          await client.query('SELECT pg_advisory_lock(4202)');
          const lockedOn = await pid(client);
          const holder = await other.connect();
          try {
            await holder.query('BEGIN');
            expect(await pid(holder)).toBe(lockedOn);
            // Another client, on that server connection, "holds" our lock (re-entrant there) ...
            const got = await holder.query('SELECT pg_try_advisory_lock(4202) AS got');
            expect(got.rows).toEqual([{ got: true }]);
            // ... while our unlock lands elsewhere and finds nothing to unlock.
            const unlocked = await client.query('SELECT pg_advisory_unlock(4202) AS ok');
            expect(unlocked.rows).toEqual([{ ok: false }]);
            await client.query('LISTEN pgb_tx');
          } finally {
            await holder.query('ROLLBACK');
            holder.release();
          }
          // The LISTEN ran on some server connection that is now back in PgBouncer's pool.
          const notifier = await other.connect();
          await notifier.query('BEGIN');
          await notifier.query("NOTIFY pgb_tx, 'hello'");
          await notifier.query('COMMIT');
          notifier.release();
          await new Promise((resolve) => setTimeout(resolve, 300));
          expect(notified).toEqual([]);
        } finally {
          // Clean the server connections for the tests that follow.
          await other.query('SELECT pg_advisory_unlock_all()');
          await client.query('SELECT pg_advisory_unlock_all()').catch(() => {});
          client.release();
        }
      });

      it("resetOnRelease 'discard' is not what you want: DISCARD ALL lands on some other client's server connection", async () => {
        const { db } = makeDb(mode, { resetOnRelease: 'discard' });
        const other = otherClient(mode);
        const theirs = { name: 'pgb_theirs', text: 'SELECT $1::int AS n' };
        await other.query({ ...theirs, values: [1] });
        const client = await db.connect();
        await client.query('SELECT 1');
        client.release(); // DISCARD ALL, on the server connection just used: the other's
        // The other application (a plain pg.Pool) finds its statement gone.
        await expect(other.query({ ...theirs, values: [2] })).rejects.toMatchObject({
          code: '26000',
        });
      });

      it('a named statement on a server connection that does not have it (26000) is prepared again, once', async () => {
        const { db, retries } = makeDb(mode);
        const other = otherClient(mode);
        const named = { name: 'pgb_moved', text: 'SELECT $1::int AS n, pg_backend_pid() AS pid' };
        const first = await db.write<{ pid: number }>({ ...named, values: [1] });
        const holder = await other.connect();
        try {
          await holder.query('BEGIN');
          expect(await pid(holder)).toBe(first.rows[0]!.pid);
          // pg sends only Bind (it parsed the name on this connection); PgBouncer puts it on
          // another server connection, which answers 26000; the pool parses it there, once.
          const again = await db.write<{ n: number; pid: number }>({ ...named, values: [2] });
          expect(again.rows[0]!.n).toBe(2);
          expect(again.rows[0]!.pid).not.toBe(first.rows[0]!.pid);
          expect(retries.map(codeOf)).toEqual(['26000']);
        } finally {
          await holder.query('ROLLBACK');
          holder.release();
        }
      });

      // One test whatever the PgBouncer version, so it never skips: what a name another
      // connection prepared does depends on whether PgBouncer tracks named statements (1.21+).
      it(`named statements across connections: ${
        TRACKS_PREPARED_STATEMENTS
          ? 'work with max_prepared_statements (PgBouncer 1.21+)'
          : 'fail with 42P05 before PgBouncer 1.21, which no re-prepare can fix'
      }`, async () => {
        const { db, retries } = makeDb(mode, {}, 2);
        const named = { name: 'pgb_shared', text: 'SELECT $1::int AS n' };
        const a = await db.connect();
        const b = await db.connect();
        try {
          expect((await a.query({ ...named, values: [1] })).rows).toEqual([{ n: 1 }]);
          // b never parsed it, so pg sends Parse; before 1.21 PgBouncer runs it on the server
          // connection a used, which has the name already.
          const second = b.query({ ...named, values: [2] });
          if (TRACKS_PREPARED_STATEMENTS) {
            expect((await second).rows).toEqual([{ n: 2 }]);
          } else {
            await expect(second).rejects.toMatchObject({ code: '42P05' });
          }
        } finally {
          a.release();
          b.release();
        }
        expect(retries).toEqual([]);
      });
    }
  });

  describe('ALTER TABLE under a named statement (session mode): prepared again, once, transparently', () => {
    alterTableCase('session');
  });
});

describe('ALTER TABLE under a named statement (no PgBouncer): prepared again, once, transparently', () => {
  alterTableCase('direct');
});

function alterTableCase(via: 'direct' | 'session'): void {
  function dbFor(): { db: ResilientPool<pg.Pool>; retries: unknown[] } {
    if (via === 'session') return makeDb('session');
    const { primary, replicas } = handle.cluster;
    const db = new ResilientPool<pg.Pool>({
      primary: primary.createPool({ max: 1 }),
      replicas: [replicas[0]!.createPool({ max: 1 })],
      logger: false,
      health: { enabled: false },
      retry: { minTimeout: 0, maxTimeout: 0 },
    });
    const retries: unknown[] = [];
    db.on('retry', (event) => retries.push(event.error));
    open.push(db);
    return { db, retries };
  }

  it('a write (not idempotent) and a read on the replica both succeed after the type change', async () => {
    const { db, retries } = dbFor();
    const table = `pgb_alter_${via}`;
    await db.write(`DROP TABLE IF EXISTS ${table}`);
    await db.write(`CREATE TABLE ${table} (id int PRIMARY KEY, v int)`);
    await db.write(`INSERT INTO ${table} VALUES (1, 10)`);
    const update = { name: `${table}_upd`, text: `UPDATE ${table} SET v = v + 1 RETURNING v` };
    const select = { name: `${table}_sel`, text: `SELECT v FROM ${table} WHERE id = $1` };
    expect((await db.write(update)).rows).toEqual([{ v: 11 }]);
    await handle.cluster.waitForReplication();
    expect((await db.read(select, [1])).rows).toEqual([{ v: 11 }]);

    // Another session changes the column's type: both cached plans now return the wrong type.
    const admin = new pg.Client(handle.cluster.primary.url);
    await admin.connect();
    await admin.query(`ALTER TABLE ${table} ALTER COLUMN v TYPE bigint`);
    await admin.end();
    await handle.cluster.waitForReplication();

    // The UPDATE was refused at Bind (0A000) and ran exactly once, after preparing it again.
    expect((await db.write(update)).rows).toEqual([{ v: '12' }]);
    await handle.cluster.waitForReplication();
    expect((await db.read(select, [1])).rows).toEqual([{ v: '12' }]);
    expect(retries.map(codeOf)).toEqual(['0A000', '0A000']);
    expect((await db.write(`SELECT v FROM ${table}`)).rows).toEqual([{ v: '12' }]);
    // The connections were repaired, not replaced: the statements work on from here.
    expect((await db.write(update)).rows).toEqual([{ v: '13' }]);
    expect(retries).toHaveLength(2);
  });
}
