/**
 * Faults behind PgBouncer, in transaction and in session pooling: the primary and the replica
 * each sit behind their own PgBouncer (as when one runs on every database host), and the servers
 * behind them are SIGKILLed and restarted.
 *
 * What a dead server looks like through PgBouncer (docs/pgbouncer.md): PgBouncer itself still
 * accepts connections and logins, so nothing is refused at once. A statement waits in PgBouncer
 * for a server connection until `query_wait_timeout` (2 s here, 120 s by default) and then fails
 * with 08P01 "query_wait_timeout"; a new login fails at once with 08P01 "server login has been
 * failing, try again later (server_login_retry)". The health probe (1 s timeout) is what notices
 * the hang first and declares the endpoint down; its circuit opens with it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { classify, ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { type PgBouncerHandle, type PoolMode, usePgBouncer } from '../support/pgbouncer.js';
import { load, until } from '../support/wait.js';

const handle = useCluster({ replicas: 1 });

const QUERY_WAIT_TIMEOUT_S = 2;

function bouncerFor(poolMode: PoolMode, node: 'primary' | 'replica'): PgBouncerHandle {
  return usePgBouncer(handle, (cluster) => ({
    poolMode,
    databases: { [node]: node === 'primary' ? cluster.primary : cluster.replicas[0]! },
    settings: { query_wait_timeout: QUERY_WAIT_TIMEOUT_S },
  }));
}

const bouncers = {
  transaction: {
    primary: bouncerFor('transaction', 'primary'),
    replica: bouncerFor('transaction', 'replica'),
  },
  session: { primary: bouncerFor('session', 'primary'), replica: bouncerFor('session', 'replica') },
};

interface Watched {
  db: ResilientPool;
  retries: unknown[];
  breaker: Array<{ endpoint: string; state: string }>;
  downs: Array<{ endpoint: string; reason: string }>;
}

const open: ResilientPool[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 2_000 })));
});

function makeDb(mode: 'transaction' | 'session', options: Partial<ResilientPoolOptions> = {}) {
  const db = new ResilientPool({
    primary: bouncers[mode].primary.bouncer.createPool('primary', { max: 4 }),
    replicas: [bouncers[mode].replica.bouncer.createPool('replica', { max: 4 })],
    logger: false,
    ...options,
  });
  open.push(db);
  const watched: Watched = { db, retries: [], breaker: [], downs: [] };
  db.on('retry', (e) => watched.retries.push(e.error));
  db.on('breaker', (e) => watched.breaker.push({ endpoint: e.endpoint, state: e.state }));
  db.on('down', (e) => watched.downs.push({ endpoint: e.endpoint, reason: e.reason }));
  return watched;
}

const WHO = "SELECT current_setting('port')::int AS port";
const codeOf = (err: unknown) => (err as { code?: unknown }).code;

async function port(db: ResilientPool, role: 'read' | 'write'): Promise<number> {
  const result = role === 'read' ? await db.read<{ port: number }>(WHO) : await db.write(WHO);
  return (result.rows[0] as { port: number }).port;
}

/** Waits until both servers answer through `mode`'s PgBouncers (they retry logins each second). */
async function serversAnswer(mode: 'transaction' | 'session'): Promise<void> {
  const { db } = makeDb(mode, { health: { enabled: false }, retry: { retries: 0 } });
  await until(
    'both servers to answer through PgBouncer',
    async () => (await port(db, 'read')) > 0 && (await port(db, 'write')) > 0,
    { timeoutMs: 20_000, intervalMs: 200 },
  );
  await db.end();
}

describe.skipIf(!handle.canControlProcesses)(
  `servers killed behind PgBouncer (${NEEDS_LOCAL_CLUSTER})`,
  () => {
    describe.each(['transaction', 'session'] as const)('%s mode', (mode) => {
      it('reads go to the replica and writes to the primary, each through its own PgBouncer', async () => {
        await serversAnswer(mode);
        const { db } = makeDb(mode);
        const [primary, replica] = [handle.cluster.primary, handle.cluster.replicas[0]!];
        expect(await port(db, 'read')).toBe(replica.port);
        expect(await port(db, 'write')).toBe(primary.port);
        await until('both endpoints probed healthy', () =>
          db.stats().endpoints.every((e) => e.health === 'healthy'),
        );
      });

      it('the replica killed under a read load: declared down, circuit open, no read fails; back after restart', async () => {
        await serversAnswer(mode);
        const replica = handle.cluster.replicas[0]!;
        const primary = handle.cluster.primary;
        const watched = makeDb(mode);
        const { db } = watched;
        try {
          const outcomes = await load(300, 4, async (i) => {
            if (i === 50) await replica.kill();
            return port(db, 'read');
          });
          expect(outcomes.filter((o) => !o.ok)).toEqual([]);
          // The reads that hung in PgBouncer were ended when the probe declared the replica
          // down, and re-sent to the primary (a hot standby cannot have written anything).
          expect(watched.retries.length).toBeGreaterThan(0);
          expect(outcomes.slice(-50).map((o) => (o.ok ? o.value : 0))).not.toContain(replica.port);
          await until('the replica to be declared down', () => watched.downs.length > 0);
          expect(watched.downs[0]!.endpoint).toBe('replica-1');
          expect(watched.breaker).toContainEqual({ endpoint: 'replica-1', state: 'open' });
          expect(await port(db, 'read')).toBe(primary.port);
        } finally {
          await replica.start();
        }
        await until(
          'reads to reach the replica again',
          async () => (await port(db, 'read')) === replica.port,
          { timeoutMs: 20_000, intervalMs: 200 },
        );
      });

      it('the primary killed: writes fail without being re-sent, then are refused at once; back after restart', async () => {
        await serversAnswer(mode);
        const primary = handle.cluster.primary;
        const watched = makeDb(mode);
        const { db } = watched;
        const table = `pgb_faults_${mode}`;
        await db.write(`CREATE TABLE IF NOT EXISTS ${table} (id serial PRIMARY KEY)`);
        await db.write(`TRUNCATE ${table}`);
        let acknowledged = 0;
        const failures: unknown[] = [];
        try {
          const outcomes = await load(60, 2, async (i) => {
            if (i === 20) await primary.kill();
            await db.write(`INSERT INTO ${table} DEFAULT VALUES`);
            acknowledged++;
          });
          for (const o of outcomes) if (!o.ok) failures.push(o.error);
          expect(failures.length).toBeGreaterThan(0);
          // What a dead server behind PgBouncer looks like to a write.
          for (const err of failures) {
            expect(['outcome-unknown', 'unavailable', 'connection']).toContain(classify(err));
          }
          await until('the primary to be declared down', () => watched.downs.length > 0);
          expect(watched.downs[0]!.endpoint).toBe('primary');
          expect(watched.breaker).toContainEqual({ endpoint: 'primary', state: 'open' });
          // Refused before anything is sent while it is down.
          await expect(db.write('SELECT 1')).rejects.toMatchObject({ code: 'E_ENDPOINT_DOWN' });
          // Reads are still served, by the replica.
          expect(await port(db, 'read')).toBe(handle.cluster.replicas[0]!.port);
        } finally {
          await primary.start();
        }
        await until(
          'writes to succeed again',
          async () => (await db.write('SELECT 1')).rowCount === 1,
          { timeoutMs: 20_000, intervalMs: 200 },
        );
        // No write was applied twice, and none acknowledged was lost.
        const { rows } = await db.write<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
        expect(rows[0]!.n).toBeGreaterThanOrEqual(acknowledged);
        const unknown = failures.filter((e) => classify(e) !== 'unavailable').length;
        expect(rows[0]!.n).toBeLessThanOrEqual(acknowledged + unknown);
      });

      it('without health probes a dead replica is a connection failure (08P01, or 57P01 in session mode), which opens its circuit', async () => {
        await serversAnswer(mode);
        const replica = handle.cluster.replicas[0]!;
        const watched = makeDb(mode, {
          health: { enabled: false },
          breaker: { volumeThreshold: 1, errorThresholdPercentage: 1, resetTimeout: 60_000 },
        });
        const { db } = watched;
        expect(await port(db, 'read')).toBe(replica.port);
        try {
          await replica.kill();
          // The read fails and is re-sent to the primary. Usually it waits in PgBouncer and
          // fails with 08P01. In session mode the client keeps its server connection, and a
          // backend that outlived the SIGKILLed postmaster for a moment ends that session itself
          // with FATAL 57P01 ("unexpected postmaster exit"), which PgBouncer passes on.
          expect(await port(db, 'read')).toBe(handle.cluster.primary.port);
          const messages = watched.retries.map((e) => `${codeOf(e)} ${(e as Error).message}`);
          expect(messages[0]).toMatch(
            mode === 'session'
              ? /^(08P01 (query_wait_timeout|server login has been failing|server conn crashed)|57P01 terminating connection due to unexpected postmaster exit)/
              : /^08P01 (query_wait_timeout|server login has been failing|server conn crashed)/,
          );
          expect(classify(watched.retries[0])).toBe('connection');
          expect(watched.breaker).toContainEqual({ endpoint: 'replica-1', state: 'open' });
        } finally {
          await replica.start();
        }
      });

      it('a named statement after the server behind PgBouncer restarted is prepared again if needed', async () => {
        await serversAnswer(mode);
        const primary = handle.cluster.primary;
        const watched = makeDb(mode, { health: { enabled: true, intervalMs: 200 } });
        const { db } = watched;
        const named = { name: `pgb_restart_${mode}`, text: 'SELECT $1::int AS n' };
        expect((await db.write(named, [1])).rows).toEqual([{ n: 1 }]);
        await primary.kill();
        await primary.start();
        await until(
          'the primary to be healthy again',
          async () =>
            (await db.write('SELECT 1')).rowCount === 1 &&
            db.stats().endpoints.every((e) => e.health === 'healthy' && !e.down),
          { timeoutMs: 20_000, intervalMs: 200 },
        );
        watched.retries.length = 0;
        // In transaction mode our connection to PgBouncer survived the restart while the server
        // lost the statement (26000): it is prepared again, transparently. In session mode
        // PgBouncer closed the client connections with their server, so a new one parses anew.
        for (let i = 0; i < 4; i++) {
          expect((await db.write(named, [i])).rows).toEqual([{ n: i }]);
        }
        const codes = watched.retries.map(codeOf);
        if (mode === 'transaction') expect(codes).toContain('26000');
        expect(codes.filter((c) => c !== '26000')).toEqual([]);
      });
    });
  },
);
