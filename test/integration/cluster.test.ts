import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { defaultRoot, sweepStaleClusterDirs } from '../../src/testing/cluster-dirs.js';
import { type ClusterNode, startLocalCluster } from '../../src/testing/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';

const db = useCluster({ replicas: 2 });

/** Every wait in these tests is bounded by these, not by the test timeout. */
const CONNECT_TIMEOUT_MS = 5_000;
const QUERY_TIMEOUT_MS = 5_000;

/** One query on a fresh connection, so each call says something about the node right now. */
async function queryOnce<R extends pg.QueryResultRow>(
  node: ClusterNode,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({
    connectionString: node.url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.query<R>(text, values)).rows;
  } finally {
    client.end().catch(() => {});
  }
}

/** A table name no other test (or run, against a shared DATABASE_URL) uses. */
const tableName = (): string => `cluster_test_${randomUUID().replaceAll('-', '').slice(0, 12)}`;

async function withTable(fn: (table: string) => Promise<void>): Promise<void> {
  const table = tableName();
  await queryOnce(db.cluster.primary, `CREATE TABLE ${table} (id int PRIMARY KEY, note text)`);
  try {
    await fn(table);
  } finally {
    if (db.cluster.primary.isRunning()) {
      await queryOnce(db.cluster.primary, `DROP TABLE IF EXISTS ${table}`).catch(() => {});
    }
  }
}

/** Pids of processes whose command line names `dir` (the postmasters started on it). */
/** Postgres processes whose command line names `dir`. */
function processesUsing(dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        // Postgres servers only: the cluster's orphan watchdog also names the directory.
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return (argv[0] ?? '').endsWith('postgres') && argv.some((a) => a.includes(dir));
      } catch {
        return false;
      }
    })
    .map(Number);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie has exited; only its parent has not collected it yet.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

describe('a started cluster', () => {
  it('runs the replicas in recovery and the primary not', async () => {
    const [primaryRow] = await queryOnce<{ r: boolean }>(
      db.cluster.primary,
      'SELECT pg_is_in_recovery() AS r',
    );
    expect(primaryRow?.r).toBe(false);
    expect(db.cluster.replicas).toHaveLength(db.replicaCount);
    for (const replica of db.cluster.replicas) {
      const [row] = await queryOnce<{ r: boolean }>(replica, 'SELECT pg_is_in_recovery() AS r');
      expect(row?.r, replica.name).toBe(true);
    }
  });

  it('names its nodes and gives each its own port', () => {
    const { primary, replicas, nodes } = db.cluster;
    expect(nodes.map((n) => n.name)).toEqual([
      'primary',
      ...replicas.map((_, i) => `replica-${i + 1}`),
    ]);
    expect(nodes.map((n) => n.role)).toEqual(['primary', ...replicas.map(() => 'replica')]);
    expect(new Set(nodes.map((n) => n.port)).size).toBe(nodes.length);
    if (db.canControlProcesses) {
      expect(primary.url).toBe(
        `postgres://postgres:${new URL(primary.url).password}@127.0.0.1:${primary.port}/postgres`,
      );
      expect(new URL(primary.url).password).not.toBe('');
    }
  });

  it('shows a row written to the primary on every replica after waitForReplication()', async () => {
    await withTable(async (table) => {
      await queryOnce(db.cluster.primary, `INSERT INTO ${table} VALUES (1, 'from primary')`);
      await db.cluster.waitForReplication();
      for (const replica of db.cluster.replicas) {
        const rows = await queryOnce(replica, `SELECT id, note FROM ${table}`);
        expect(rows, replica.name).toEqual([{ id: 1, note: 'from primary' }]);
      }
    });
  });

  it('refuses writes on a replica with SQLSTATE 25006', async (ctx) => {
    ctx.skip(db.replicaCount === 0, 'no replicas: REPLICA_URLS is empty');
    const replica = db.cluster.replicas[0]!;
    await expect(queryOnce(replica, `CREATE TABLE ${tableName()} (id int)`)).rejects.toMatchObject({
      code: '25006',
    });
  });

  it('gives pools that reach the node they were made from', async () => {
    const pool = db.cluster.primary.createPool({ max: 1 });
    try {
      const { rows } = await pool.query<{ port: number }>(
        "SELECT current_setting('port')::int AS port",
      );
      // An external server may sit behind a proxy on another port; the local one may not.
      if (db.canControlProcesses) expect(rows[0]?.port).toBe(db.cluster.primary.port);
    } finally {
      await pool.end();
    }
  });
});

describe.skipIf(!db.canControlProcesses)(`node process control (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('kill() refuses connections until start() brings the replica back, and it catches up', async () => {
    const replica = db.cluster.replicas[0]!;
    const { pid, port } = replica;
    expect(pid).toBeTypeOf('number');

    await replica.kill();
    expect(replica.isRunning()).toBe(false);
    expect(replica.pid).toBeUndefined();
    expect(isAlive(pid!)).toBe(false);
    await expect(queryOnce(replica, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await withTable(async (table) => {
      // Written while the replica is down, so it has to catch up from the primary's WAL.
      await queryOnce(db.cluster.primary, `INSERT INTO ${table} VALUES (7, 'while down')`);
      await replica.start();
      expect(replica.isRunning()).toBe(true);
      expect(replica.port).toBe(port);
      expect(replica.pid).not.toBe(pid);
      await db.cluster.waitForReplication();
      expect(await queryOnce(replica, `SELECT note FROM ${table}`)).toEqual([
        { note: 'while down' },
      ]);
    });
  });

  it('kill() of the primary: after start() the replicas stream from it again', async () => {
    const { primary } = db.cluster;
    await primary.kill();
    await expect(queryOnce(primary, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(db.cluster.waitForReplication(1_000)).rejects.toThrow(/primary is not running/);
    await primary.start();
    await withTable(async (table) => {
      await queryOnce(primary, `INSERT INTO ${table} VALUES (1, 'after restart')`);
      // Replicas retry a lost primary every wal_retrieve_retry_interval (500 ms here).
      await db.cluster.waitForReplication(15_000);
      for (const replica of db.cluster.replicas) {
        expect(await queryOnce(replica, `SELECT count(*)::int AS n FROM ${table}`)).toEqual([
          { n: 1 },
        ]);
      }
    });
  });

  it('stop() shuts a node down cleanly and start() brings it back', async () => {
    const replica = db.cluster.replicas[1] ?? db.cluster.replicas[0]!;
    await replica.stop();
    expect(replica.isRunning()).toBe(false);
    await expect(queryOnce(replica, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await replica.start();
    expect(await queryOnce(replica, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('pause() hangs open connections and new ones; resume() lets them finish', async () => {
    const { primary } = db.cluster;
    const timed = new pg.Client({ connectionString: primary.url, query_timeout: 300 });
    const patient = new pg.Client({
      connectionString: primary.url,
      query_timeout: QUERY_TIMEOUT_MS,
    });
    for (const client of [timed, patient]) {
      client.on('error', () => {});
      await client.connect();
    }
    primary.pause();
    try {
      expect(primary.isRunning()).toBe(true);
      await expect(timed.query('SELECT 1')).rejects.toThrow('Query read timeout');

      const fresh = new pg.Client({ connectionString: primary.url, connectionTimeoutMillis: 300 });
      fresh.on('error', () => {});
      await expect(fresh.connect()).rejects.toThrow(/timeout/i);

      const answer = patient.query<{ answer: number }>('SELECT 42 AS answer');
      const early = await Promise.race([
        answer.then(() => 'answered'),
        delay(300).then(() => 'still waiting'),
      ]);
      expect(early).toBe('still waiting');

      primary.resume();
      await expect(answer).resolves.toMatchObject({ rows: [{ answer: 42 }] });
      expect(await queryOnce(primary, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      primary.resume();
      await Promise.all([timed.end().catch(() => {}), patient.end().catch(() => {})]);
    }
  });

  it('kill() of a paused node ends it and its frozen backends; start() recovers it', async () => {
    const replica = db.cluster.replicas[0]!;
    const client = new pg.Client({ connectionString: replica.url });
    client.on('error', () => {});
    await client.connect();
    try {
      replica.pause();
      await replica.kill();
      expect(replica.isRunning()).toBe(false);
      await replica.start();
      expect(await queryOnce(replica, 'SELECT pg_is_in_recovery() AS r')).toEqual([{ r: true }]);
    } finally {
      client.end().catch(() => {});
    }
  });

  it('waitForReplication() times out naming a paused replica', async () => {
    const replica = db.cluster.replicas[0]!;
    await withTable(async (table) => {
      replica.pause();
      try {
        await queryOnce(db.cluster.primary, `INSERT INTO ${table} VALUES (1, 'unseen')`);
        await expect(db.cluster.waitForReplication(500)).rejects.toThrow(replica.name);
      } finally {
        replica.resume();
      }
      await db.cluster.waitForReplication();
    });
  });
});

describe.skipIf(!db.canControlProcesses)(`cluster lifecycle (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('stop() leaves no server on its data directory and removes the files', async () => {
    const dataDir = path.join(tmpdir(), `resilient-pool-stop-test-${process.pid}-${Date.now()}`);
    const lines: string[] = [];
    const cluster = await startLocalCluster({ replicas: 1, dataDir, log: (l) => lines.push(l) });
    try {
      const pids = cluster.nodes.map((n) => n.pid!);
      expect(lines).toContainEqual(
        expect.stringMatching(/^\[primary\] .*ready to accept connections/),
      );
      expect(lines).toContainEqual(expect.stringMatching(/^\[replica-1\] .*read-only connections/));
      const pool = cluster.primary.createPool();
      await pool.query('SELECT 1');
      expect(processesUsing(dataDir).sort()).toEqual([...pids].sort());
      // A paused node must not hold up the stop.
      cluster.replicas[0]!.pause();

      await cluster.stop();

      expect(processesUsing(dataDir)).toEqual([]);
      expect(pids.filter(isAlive)).toEqual([]);
      expect(existsSync(dataDir)).toBe(false);
      expect(cluster.nodes.map((n) => n.isRunning())).toEqual([false, false]);
      expect(pool.ended).toBe(true);
    } finally {
      await cluster.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('quotes the server log when a node cannot start, and cleans up', async () => {
    const dataDir = path.join(tmpdir(), `resilient-pool-fail-test-${process.pid}-${Date.now()}`);
    try {
      await expect(
        startLocalCluster({ replicas: 0, dataDir, postgresConf: { shared_buffers: 'lots' } }),
      ).rejects.toThrow(/invalid value for parameter "shared_buffers"/);
      expect(existsSync(dataDir)).toBe(false);
      expect(processesUsing(dataDir)).toEqual([]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('startLocalCluster options and directories', () => {
  it('rejects invalid options, listing every problem', async () => {
    const options = {
      replicas: -1,
      dataDir: '',
      postgresConf: { 'bad key': 'x', work_mem: '1MB\nfsync = on' },
      log: 'yes',
      extra: true,
    };
    // @ts-expect-error -- deliberately wrong types
    const started = startLocalCluster(options);
    await expect(started).rejects.toMatchObject({ code: 'E_CONFIG' });
    const message = await started.catch((err: Error) => err.message);
    for (const part of ['`extra`', '`replicas`', '`dataDir`', '`bad key`', 'work_mem', '`log`']) {
      expect(message).toContain(part);
    }
  });

  it('sweeps directories whose owning process is gone and keeps the others', async () => {
    const root = defaultRoot();
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
    const stale = path.join(root, `${deadPid}-sweeptest${randomUUID().slice(0, 8)}`);
    const live = path.join(root, `${process.ppid}-sweeptest${randomUUID().slice(0, 8)}`);
    try {
      for (const dir of [stale, live]) mkdirSync(path.join(dir, 'primary'), { recursive: true });
      await sweepStaleClusterDirs(root);
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(live)).toBe(true);
    } finally {
      rmSync(stale, { recursive: true, force: true });
      rmSync(live, { recursive: true, force: true });
    }
  });
});
