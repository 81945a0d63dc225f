/**
 * pg-boss 10 over a ResilientPool, on a real primary: pg-boss's `db` option takes any object
 * with `executeSql(text, values)`, here `db.write()`, so every job statement runs on the
 * primary through the pool's breaker, queue and safe retries. The snippet is the one in
 * docs/integrations.md.
 */
import PgBoss from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';

const handle = useCluster({ replicas: 1 });
let db: ResilientPool;
let boss: PgBoss | undefined;

beforeAll(() => {
  db = new ResilientPool({
    primary: handle.cluster.primary.createPool({ max: 6 }),
    replicas: [handle.cluster.replicas[0]!.createPool({ max: 2 })],
    logger: false,
  });
});

afterAll(async () => {
  // pg-boss leaves a `db` it was given open: stop it first, then end the pool.
  await boss?.stop({ graceful: false, wait: true, timeout: 5_000 });
  await db?.end();
});

describe('pg-boss over a ResilientPool', () => {
  it('sends a job and works it on the primary', async () => {
    const sent: Array<{ to: string }> = [];
    let delivered!: () => void;
    const handled = new Promise<void>((resolve) => {
      delivered = resolve;
    });
    const sendEmail = async (data: { to: string }) => {
      sent.push(data);
      delivered();
    };

    // --- the snippet of docs/integrations.md -------------------------------------------------
    boss = new PgBoss({
      db: { executeSql: (text, values) => db.write(text, values) },
      // Optional: pg-boss's own maintenance and monitoring, as without a ResilientPool.
      supervise: true,
    });
    boss.on('error', (err) => console.error('pg-boss', err));
    await boss.start();

    await boss.createQueue('welcome-email');
    await boss.work<{ to: string }>(
      'welcome-email',
      { pollingIntervalSeconds: 0.5 },
      async (jobs) => {
        for (const job of jobs) await sendEmail(job.data);
      },
    );
    const id = await boss.send('welcome-email', { to: 'ada@example.com' });
    // ------------------------------------------------------------------------------------------

    await handled;
    expect(sent).toEqual([{ to: 'ada@example.com' }]);
    // The handler resolved: pg-boss completes the job right after.
    let state: string | undefined;
    for (let i = 0; i < 50 && state !== 'completed'; i++) {
      state = (await boss.getJobById('welcome-email', id!))?.state;
      if (state !== 'completed') await new Promise((r) => setTimeout(r, 100));
    }
    expect(state).toBe('completed');

    const replica = db.stats().endpoints.find((e) => e.role === 'replica');
    const primary = db.stats().endpoints.find((e) => e.role === 'primary');
    expect(primary?.calls).toBeGreaterThan(0);
    expect(replica?.calls ?? 0).toBe(0);
  });

  it('enqueues a job in the same transaction as the work that asks for it', async () => {
    const b = boss!;
    await db.write('CREATE TABLE pgboss_signups (email text PRIMARY KEY)');
    await b.createQueue('signup-email');

    // --- the snippet of docs/integrations.md -------------------------------------------------
    const signUp = (email: string, fail = false) =>
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO pgboss_signups (email) VALUES ($1)', [email]);
        // The job is inserted by this transaction: it exists if and only if the signup commits.
        await b.send(
          'signup-email',
          { email },
          { db: { executeSql: (text, values) => tx.query(text, values) } },
        );
        if (fail) throw new Error('signup refused');
      });
    // ------------------------------------------------------------------------------------------

    await signUp('grace@example.com');
    await expect(signUp('linus@example.com', true)).rejects.toThrow('signup refused');
    const { rows } = await db.write<{ email: string }>(
      "SELECT data->>'email' AS email FROM pgboss.job WHERE name = 'signup-email'",
    );
    expect(rows).toEqual([{ email: 'grace@example.com' }]);
    const signups = await db.write('SELECT email FROM pgboss_signups');
    expect(signups.rows).toEqual([{ email: 'grace@example.com' }]);
  });
});
