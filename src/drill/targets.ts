/**
 * What a drill runs against: a local cluster (started here) or external servers, each node
 * behind its own ChaosProxy so network faults can hit any of them, and the ResilientPool under
 * test with pools pointed at the proxies.
 */
import type { Redis as RedisClient } from 'ioredis';
import pg from 'pg';
import { ResilientPool } from '../index.js';
import {
  ChaosProxy,
  type ClusterNode,
  type LocalCluster,
  startLocalCluster,
} from '../testing/index.js';

/** One endpoint of the pool under test. */
export interface DrillNode {
  /** Endpoint name in the ResilientPool: 'primary', 'replica-1', ... */
  readonly name: string;
  /** The proxy the endpoint's pool connects through. */
  readonly proxy: ChaosProxy;
  /** The server process, when the drill started it (local mode). */
  server: ClusterNode | undefined;
}

export interface DrillTargets {
  readonly db: ResilientPool;
  readonly primary: DrillNode;
  readonly replicas: readonly DrillNode[];
  /** The local cluster, undefined against external servers. */
  readonly cluster: LocalCluster | undefined;
  /** The proxy in front of Redis, when the drill runs with a cache. */
  readonly redisProxy: ChaosProxy | undefined;
  /** Connection settings of the current primary, bypassing the proxies (for the final checks). */
  primaryConnection(): pg.PoolConfig;
  /** The wrapped pg pools, by endpoint name (for the leak check). */
  readonly pools: ReadonlyMap<string, pg.Pool>;
  close(): Promise<void>;
}

export interface TargetOptions {
  replicas: number;
  /** Redis for the read cache (loopback), put behind its own ChaosProxy; none: no cache. */
  redisUrl: string | undefined;
  /** External servers instead of a local cluster; must be reachable on loopback. */
  external: { primary: string; replicas: readonly string[] } | undefined;
  concurrency: number;
  log: ((line: string) => void) | undefined;
}

/** Bounds every wait of the pool under test, so a fault shows up as errors, not as a hang. */
const POOL_SETTINGS: pg.PoolConfig = {
  connectionTimeoutMillis: 1_500,
  query_timeout: 2_000,
  idleTimeoutMillis: 5_000,
};

function connectionOf(url: string): pg.PoolConfig {
  const parsed = new URL(url);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port === '' ? 5432 : Number(parsed.port),
    user: decodeURIComponent(parsed.username) || 'postgres',
    password: decodeURIComponent(parsed.password),
    database:
      parsed.pathname.length > 1 ? decodeURIComponent(parsed.pathname.slice(1)) : 'postgres',
  };
}

export async function openTargets(options: TargetOptions): Promise<DrillTargets> {
  let cluster: LocalCluster | undefined;
  const proxies: ChaosProxy[] = [];
  const pools = new Map<string, pg.Pool>();
  const candidatePools = new Map<string, pg.Pool>();
  try {
    let urls: { primary: string; replicas: readonly string[] };
    if (options.external) {
      urls = options.external;
    } else {
      cluster = await startLocalCluster({
        replicas: options.replicas,
        // Quorum commit: a write is acknowledged once one standby has it, so promoting the most
        // advanced standby loses no acknowledged write (what Patroni's synchronous mode does).
        postgresConf: {
          max_connections: 200,
          ...(options.replicas >= 2 ? { synchronous_standby_names: 'ANY 1 (*)' } : {}),
        },
      });
      urls = { primary: cluster.primary.url, replicas: cluster.replicas.map((r) => r.url) };
    }
    const makeNode = async (name: string, url: string, server: ClusterNode | undefined) => {
      const connection = connectionOf(url);
      const proxy = await ChaosProxy.start({
        target: { host: String(connection.host), port: Number(connection.port) },
      });
      proxies.push(proxy);
      const settings = {
        ...connection,
        ...POOL_SETTINGS,
        host: proxy.host,
        port: proxy.port,
        max: Math.max(4, Math.ceil(options.concurrency / 2)),
      };
      pools.set(name, new pg.Pool(settings));
      // Every node is also a candidate for the primary role (a pool of its own), so a
      // promotion is found by the pool itself, as an application would configure it.
      candidatePools.set(name, new pg.Pool(settings));
      return { name, proxy, server } satisfies DrillNode;
    };
    const primary = await makeNode('primary', urls.primary, cluster?.primary);
    const replicas: DrillNode[] = [];
    for (const [i, url] of urls.replicas.entries()) {
      replicas.push(await makeNode(`replica-${i + 1}`, url, cluster?.replicas[i]));
    }
    let redis: RedisClient | undefined;
    let redisProxy: ChaosProxy | undefined;
    if (options.redisUrl !== undefined) {
      const url = new URL(options.redisUrl);
      redisProxy = await ChaosProxy.start({
        target: { host: url.hostname, port: url.port === '' ? 6379 : Number(url.port) },
      });
      proxies.push(redisProxy);
      // Loaded only for a drill with a cache: ioredis is an optional peer dependency.
      const { Redis } = await import('ioredis').catch((err: unknown) => {
        throw new Error(
          'runDrill({ redisUrl }) needs the ioredis package for its read cache: npm install ioredis',
          { cause: err },
        );
      });
      redis = new Redis({
        host: redisProxy.host,
        port: redisProxy.port,
        ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
        // docs/cache.md: fail fast while disconnected, replace a connection that stops answering.
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        socketTimeout: 1_000,
        connectTimeout: 1_000,
      });
      redis.on('error', () => {});
      await redis.connect();
    }
    const db = new ResilientPool({
      primary: [...candidatePools.entries()].map(([name, pool]) => ({
        pool,
        name: `node:${name}`,
      })),
      replicas: replicas.map((r) => ({ pool: pools.get(r.name)!, name: r.name })),
      breaker: { consecutiveFailures: 3, resetTimeout: 1_500, volumeThreshold: 10 },
      queue: { acquireTimeout: 1_000, maxWaiting: 100 },
      retry: { retries: 2, minTimeout: 20, maxTimeout: 200 },
      logger: false,
      ...(redis
        ? { cache: { redis, prefix: `rp-drill-${process.pid}:`, ttl: 5_000, timeout: 50 } }
        : {}),
    });
    const externalPrimary = urls.primary;
    return {
      db,
      primary,
      replicas,
      cluster,
      // Endpoint pools and candidate pools alike must give every client back.
      pools: new Map([
        ...pools,
        ...[...candidatePools].map(([name, pool]) => [`candidate:${name}`, pool] as const),
      ]),
      redisProxy,
      primaryConnection: () => ({
        ...connectionOf(cluster ? cluster.primary.url : externalPrimary),
        max: 2,
        connectionTimeoutMillis: 5_000,
      }),
      close: async () => {
        await db.end({ timeout: 5_000 });
        redis?.disconnect();
        await Promise.all(proxies.map((p) => p.close()));
        await cluster?.stop();
      },
    };
  } catch (err) {
    await Promise.all(
      [...pools.values(), ...candidatePools.values()].map((p) => p.end().catch(() => {})),
    );
    await Promise.all(proxies.map((p) => p.close().catch(() => {})));
    await cluster?.stop().catch(() => {});
    throw err;
  }
}
