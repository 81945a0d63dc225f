/**
 * What a drill runs against: a local cluster (started here) or external servers, each node
 * behind its own ChaosProxy so network faults can hit any of them, and the ResilientPool under
 * test with pools pointed at the proxies.
 */
import type { Redis as RedisClient } from 'ioredis';
import pg from 'pg';
import { ResilientPool, type ResilientPoolOptions } from '../index.js';
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
  /** The node that was the primary at the start (see `currentPrimary()` after a promotion). */
  readonly primary: DrillNode;
  readonly replicas: readonly DrillNode[];
  /** Every node: the primary, then the replicas. */
  readonly nodes: readonly DrillNode[];
  /** The local cluster, undefined against external servers. */
  readonly cluster: LocalCluster | undefined;
  /** The proxy in front of Redis, when the drill runs with a cache. */
  readonly redisProxy: ChaosProxy | undefined;
  /** `max` of every wrapped pg pool. */
  readonly poolMax: number;
  /** The pool's `routing.maxLagMs`: a replica further behind gets no reads. */
  readonly maxLagMs: number;
  /** The pool's queue settings as the drill ran them (its own, with `poolOptions` merged over). */
  readonly queue: DrillQueueSettings;
  /** Connection settings of the current primary, bypassing the proxies (for the final checks). */
  primaryConnection(): pg.PoolConfig;
  /** Connection settings of a node, bypassing its proxy (for faults made with SQL). */
  directConnection(node: DrillNode): pg.ClientConfig;
  /** The wrapped pg pools, by endpoint name (for the leak check). */
  readonly pools: ReadonlyMap<string, pg.Pool>;
  /** Callers waiting inside the pg pools an endpoint wraps. */
  poolWaiting(endpoint: string): number;
  /**
   * Calls `listener` whenever one of the wrapped pools starts a connection attempt (when pg-pool
   * starts its client's connect, not when the connect completes), with the pool's label: the
   * endpoint's name for a replica's pool, `primary@<node>` for a primary candidate's.
   */
  onConnectAttempt(listener: (pool: string) => void): void;
  close(): Promise<void>;
}

/** The name of the primary candidate that stands for a node. */
export const candidateName = (node: string): string => `node:${node}`;

/** The node a primary candidate stands for. */
export const nodeOfCandidate = (candidate: string): string => candidate.replace(/^node:/, '');

/** The node that is the primary now (local cluster), else the one that was at the start. */
export function currentPrimary(targets: DrillTargets): DrillNode {
  return targets.nodes.find((n) => n.server?.role === 'primary') ?? targets.primary;
}

/**
 * Nodes that are standbys now: replica endpoints whose node was promoted lead to the primary, so
 * faults meant for a replica leave them alone. Against external servers, every replica.
 */
export function standbys(targets: DrillTargets): DrillNode[] {
  return targets.replicas.filter(
    (r) => r.server === undefined || (r.server.role === 'replica' && r.server.isRunning()),
  );
}

export interface TargetOptions {
  replicas: number;
  /** Redis for the read cache (loopback), put behind its own ChaosProxy; none: no cache. */
  redisUrl: string | undefined;
  /** External servers instead of a local cluster; must be reachable on loopback. */
  external: { primary: string; replicas: readonly string[] } | undefined;
  concurrency: number;
  log: ((line: string) => void) | undefined;
  /** Merged over the drill's own pool options (see {@link DrillPoolOptions}). */
  poolOptions?: DrillPoolOptions | undefined;
}

/**
 * Options of the pool under test that a drill may set over its own: to drill a feature that is
 * off by default, or other settings. Each group (breaker, queue, routing, ...) is merged over
 * the drill's group of the same name; the endpoints are the drill's.
 */
export type DrillPoolOptions = Omit<ResilientPoolOptions, 'primary' | 'replicas'>;

/** The pool's `queue` group in a drill, for the report. */
export interface DrillQueueSettings {
  maxWaiting: number;
  acquireTimeout: number;
  maxQueueDelayMs: number;
  /** `queue.adaptiveLimit` as given (true: on with its defaults). */
  adaptiveLimit: NonNullable<ResilientPoolOptions['queue']>['adaptiveLimit'] | false;
}

/**
 * The drill's queue: bounded (`maxWaiting` 100, `acquireTimeout` 1 s) so that every wait ends,
 * and long enough that the workload's callers are never refused while an endpoint is down; shed
 * by expected wait (`maxQueueDelayMs` 7, about a third of the overload statement's time: the
 * overload bar, admitted p99 <= 2x unloaded, leaves one statement time for the wait and the
 * machine's noise, and the p99 wait is about twice the bound) so that at twice the replicas'
 * capacity admitted reads keep their latency and the excess is refused at once. In runs of the
 * overload alone, 5 and 7 both admitted about 98 % of capacity at an admitted p99 of 34–35 ms
 * (unloaded 21–28 ms); 10 admitted 92–97 % at 40–45 ms, too close to the bar once the whole
 * drill's heap and traffic share the 2-core test machine (48 ms against 50 in a full run). With
 * 20 (and the burst then released in 10 ms batches) admitted p99 was about 2.6x unloaded.
 *
 * Bounding the count instead (a queue of one pool's worth, `maxWaiting` = `max`) met the overload
 * bars too, but refused the workload's own reads with E_QUEUE_FULL after primary-restart in about
 * one run in three (a reconnecting pool briefly queues more than `max` calls), and the adaptive
 * limit (Gradient2) lowered the replicas' limits to 2 of 4 in calm periods too (docs/drills.md
 * has the runs). `runDrill({ pool: { queue: { maxQueueDelayMs: 0 } } })` drills the count bound
 * alone.
 */
export function drillQueue(): DrillQueueSettings {
  return { acquireTimeout: 1_000, maxWaiting: 100, maxQueueDelayMs: 7, adaptiveLimit: false };
}

/** `base` with each of `extra`'s groups merged over base's group of the same name. */
export function mergePoolOptions<T extends object>(
  base: T,
  extra: DrillPoolOptions | undefined,
): T {
  if (extra === undefined) return base;
  const merged = { ...base } as Record<string, unknown>;
  for (const [key, value] of Object.entries(extra)) {
    const current = merged[key];
    const plain = (v: unknown) =>
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      Object.getPrototypeOf(v) === Object.prototype;
    merged[key] =
      plain(current) && plain(value) ? { ...(current as object), ...(value as object) } : value;
  }
  return merged as T;
}

/**
 * A pg Client class that reports each connection attempt as it starts. Counting pg-pool's
 * 'connect' events instead would count completions: a connect started while a server hung and
 * completed once it was back would read as an attempt of the recovery.
 */
function attemptReportingClient(onAttempt: () => void): typeof pg.Client {
  return class AttemptReportingClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      // On the instance: pg's connect() is overloaded (callback or promise), and both count.
      const connect = this.connect.bind(this) as (...args: unknown[]) => unknown;
      (this as { connect: unknown }).connect = (...args: unknown[]) => {
        onAttempt();
        return connect(...args);
      };
    }
  };
}

/** Bounds every wait of the pool under test, so a fault shows up as errors, not as a hang. */
const POOL_SETTINGS: pg.PoolConfig = {
  connectionTimeoutMillis: 1_500,
  query_timeout: 2_000,
  idleTimeoutMillis: 5_000,
};

/** The pool's lag bound: the replica-lag scenario pauses replay well past it. */
const MAX_LAG_MS = 1_000;

/**
 * The servers' max_connections: what the drill's pools can open (two pools of `poolMax` per node,
 * plus probes and the drill's own checks) with room to spare, and small enough that the
 * too-many-connections scenario fills it quickly. Not below initdb's 100: the standbys are
 * copies made before the primary first starts, and a standby refuses to start with a lower
 * setting than its control file recorded.
 */
export function maxConnectionsFor(poolMax: number): number {
  return Math.max(100, 4 * poolMax + 20);
}

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
  const attemptListeners: Array<(pool: string) => void> = [];
  const reportAttempt = (label: string) => () => {
    for (const listener of attemptListeners) listener(label);
  };
  const poolMax = Math.max(4, Math.ceil(options.concurrency / 2));
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
          max_connections: maxConnectionsFor(poolMax),
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
        max: poolMax,
      };
      pools.set(
        name,
        new pg.Pool({ ...settings, Client: attemptReportingClient(reportAttempt(name)) }),
      );
      // Every node is also a candidate for the primary role (a pool of its own), so a
      // promotion is found by the pool itself, as an application would configure it.
      candidatePools.set(
        name,
        new pg.Pool({
          ...settings,
          Client: attemptReportingClient(reportAttempt(`primary@${name}`)),
        }),
      );
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
    const poolOptions = mergePoolOptions(
      {
        primary: [...candidatePools.entries()].map(([name, pool]) => ({
          pool,
          name: candidateName(name),
        })),
        replicas: replicas.map((r) => ({ pool: pools.get(r.name)!, name: r.name })),
        breaker: { consecutiveFailures: 3, resetTimeout: 1_500, volumeThreshold: 10 },
        queue: { ...drillQueue() },
        retry: { retries: 2, minTimeout: 20, maxTimeout: 200 },
        routing: { maxLagMs: MAX_LAG_MS },
        logger: false,
        ...(redis
          ? { cache: { redis, prefix: `rp-drill-${process.pid}:`, ttl: 5_000, timeout: 50 } }
          : {}),
      } satisfies ResilientPoolOptions,
      options.poolOptions,
    );
    const db = new ResilientPool(poolOptions);
    const queue = poolOptions.queue as DrillQueueSettings;
    const externalPrimary = urls.primary;
    const nodes = [primary, ...replicas];
    const directUrl = new Map(
      nodes.map((n, i) => [n.name, i === 0 ? urls.primary : urls.replicas[i - 1]!]),
    );
    return {
      db,
      primary,
      replicas,
      nodes,
      cluster,
      poolMax,
      maxLagMs: MAX_LAG_MS,
      queue: {
        maxWaiting: queue.maxWaiting,
        acquireTimeout: queue.acquireTimeout,
        maxQueueDelayMs: queue.maxQueueDelayMs,
        adaptiveLimit: queue.adaptiveLimit ?? false,
      },
      directConnection: (node) => ({
        ...connectionOf(node.server?.url ?? directUrl.get(node.name)!),
        connectionTimeoutMillis: 3_000,
        query_timeout: 5_000,
      }),
      onConnectAttempt: (listener) => {
        attemptListeners.push(listener);
      },
      poolWaiting: (endpoint) => {
        // The primary endpoint forwards to one candidate at a time: its waiters are theirs.
        const wrapped =
          endpoint === 'primary' ? [...candidatePools.values()] : [pools.get(endpoint)];
        return wrapped.reduce((n, pool) => n + (pool?.waitingCount ?? 0), 0);
      },
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
