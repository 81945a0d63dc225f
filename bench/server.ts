/**
 * The PostgreSQL servers the real-server cases run against: `DATABASE_URL` when set, otherwise an
 * embedded primary with two streaming replicas from `startLocalCluster({ replicas: 2 })`. Cases
 * 1 and 4 use the primary only; the peer rows (bench/peers/) read from the two replicas, which
 * under `DATABASE_URL` come from `BENCH_REPLICA_URLS`. Only loopback servers are used, and only
 * host:port is ever printed.
 */
import pg from 'pg';
import type { LocalCluster } from '../src/testing/index.js';

/** One server of the bench's cluster, with what a proxy started by the bench needs to log in. */
export interface BenchNode {
  name: string;
  host: string;
  port: number;
  user: string;
  /** Written only to the 0700 config directories of the proxies the bench starts; never printed. */
  password: string;
  database: string;
  /** A pool on this server with the bench's settings plus `config`. */
  createPool(config: pg.PoolConfig): pg.Pool;
}

/** A primary and its streaming replicas, for the peer rows. */
export interface BenchTopology {
  primary: BenchNode;
  replicas: readonly BenchNode[];
}

export interface BenchServer {
  /** `host:port`, never credentials. */
  label: string;
  /**
   * Connection errors that reached a client or pool outside any query (the server died or
   * restarted under the bench): counted and reported instead of crashing the run.
   */
  readonly stray: { count: number; first: string | undefined };
  source: 'DATABASE_URL' | 'embedded';
  /** A pool on the primary with the bench's settings plus `config`. */
  createPool(config: pg.PoolConfig): pg.Pool;
  /** The primary and two replicas, or why there are none (the peer rows are then skipped). */
  topology: BenchTopology | { problem: string };
  stop(): Promise<void>;
}

/**
 * pg's defaults otherwise. No connectionTimeoutMillis: with it pg-pool arms a timer on every
 * connect(), which neither a typical pool nor the comparison needs; the round watchdog in
 * load.ts catches a server that stops answering.
 */
const BASE_CONFIG: pg.PoolConfig = {};

/**
 * One listener per connection (not per call, so both sides pay nothing per query): with pg, an
 * error on a checked-out client outside a query is otherwise an unhandled 'error' event.
 */
export function guard(pool: pg.Pool, stray: BenchServer['stray']): pg.Pool {
  const record = (err: Error) => {
    stray.count++;
    stray.first ??= `${(err as { code?: string }).code ?? ''} ${err.message}`.trim();
  };
  pool.on('error', record);
  pool.on('connect', (client) => client.on('error', record));
  return pool;
}

const LOOPBACK = /^(127(\.\d{1,3}){3}|localhost|\[?::1\]?)$/i;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

export function hostPort(url: string): { host: string; port: string } {
  const parsed = new URL(url);
  const host = parsed.hostname || parsed.searchParams.get('host') || 'localhost';
  return { host, port: parsed.port || '5432' };
}

/** A node from a connection URL; libpq's environment variables fill what the URL leaves out. */
function urlNode(name: string, url: string, stray: BenchServer['stray']): BenchNode {
  const parsed = new URL(url);
  const { host, port } = hostPort(url);
  const user = decodeURIComponent(parsed.username) || process.env.PGUSER || 'postgres';
  return {
    name,
    host: host === 'localhost' ? '127.0.0.1' : host.replace(/^\[|\]$/g, ''),
    port: Number(port),
    user,
    password: decodeURIComponent(parsed.password) || process.env.PGPASSWORD || '',
    database: decodeURIComponent(parsed.pathname.slice(1)) || process.env.PGDATABASE || user,
    createPool: (config) =>
      guard(new pg.Pool({ connectionString: url, ...BASE_CONFIG, ...config }), stray),
  };
}

/** The replicas named by BENCH_REPLICA_URLS (comma-separated), next to DATABASE_URL. */
function urlTopology(primary: BenchNode, stray: BenchServer['stray']): BenchServer['topology'] {
  const urls = (process.env.BENCH_REPLICA_URLS ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length < 2) {
    return {
      problem:
        'DATABASE_URL is set but BENCH_REPLICA_URLS (two replica URLs, comma-separated) is not; ' +
        'set it, or unset DATABASE_URL to let the bench start an embedded primary with two replicas',
    };
  }
  const replicas = urls.slice(0, 2).map((u, i) => urlNode(`replica-${i + 1}`, u, stray));
  const remote = replicas.find((r) => !isLoopback(r.host));
  if (remote !== undefined) {
    return {
      problem: `BENCH_REPLICA_URLS points at ${remote.host}:${remote.port}; the bench only loads loopback servers`,
    };
  }
  return { primary, replicas };
}

export async function openServer(): Promise<BenchServer> {
  const url = process.env.DATABASE_URL;
  if (url !== undefined && url !== '') {
    const { host, port } = hostPort(url);
    if (!isLoopback(host)) {
      throw new Error(
        `DATABASE_URL points at ${host}:${port}; the bench only loads loopback servers`,
      );
    }
    const stray = { count: 0, first: undefined };
    const primary = urlNode('primary', url, stray);
    return {
      label: `${host}:${port}`,
      source: 'DATABASE_URL',
      stray,
      createPool: primary.createPool,
      topology: urlTopology(primary, stray),
      stop: async () => {},
    };
  }
  // Imported lazily so that a bench against DATABASE_URL never depends on the testing kit.
  const testing = (await import('../src/testing/index.js')) as {
    startLocalCluster(options: { replicas: number }): Promise<LocalCluster>;
  };
  const cluster = await testing.startLocalCluster({ replicas: 2 });
  const { host, port } = hostPort(cluster.primary.url);
  const stray = { count: 0, first: undefined };
  const nodes = cluster.nodes.map((n): BenchNode => {
    const parsed = new URL(n.url);
    return {
      name: n.name,
      host: n.host,
      port: n.port,
      user: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      database: decodeURIComponent(parsed.pathname.slice(1)),
      createPool: (config) => guard(n.createPool({ ...BASE_CONFIG, ...config }), stray),
    };
  });
  const [primary, ...replicas] = nodes as [BenchNode, ...BenchNode[]];
  return {
    label: `${host}:${port}`,
    source: 'embedded',
    stray,
    createPool: primary.createPool,
    topology: { primary, replicas },
    stop: () => cluster.stop(),
  };
}
