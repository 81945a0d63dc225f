/**
 * The PostgreSQL server the real-server cases run against: `DATABASE_URL` when set, otherwise an
 * embedded primary from `startLocalCluster({ replicas: 0 })`. Only loopback servers are used,
 * and only host:port is ever printed.
 */
import pg from 'pg';
import type { LocalCluster } from '../src/testing/index.js';

export interface BenchServer {
  /** `host:port`, never credentials. */
  label: string;
  /**
   * Connection errors that reached a client or pool outside any query (the server died or
   * restarted under the bench): counted and reported instead of crashing the run.
   */
  readonly stray: { count: number; first: string | undefined };
  source: 'DATABASE_URL' | 'embedded';
  /** A pool on the server with the bench's settings plus `config`. */
  createPool(config: pg.PoolConfig): pg.Pool;
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
function guard(pool: pg.Pool, stray: BenchServer['stray']): pg.Pool {
  const record = (err: Error) => {
    stray.count++;
    stray.first ??= `${(err as { code?: string }).code ?? ''} ${err.message}`.trim();
  };
  pool.on('error', record);
  pool.on('connect', (client) => client.on('error', record));
  return pool;
}

const LOOPBACK = /^(127(\.\d{1,3}){3}|localhost|\[?::1\]?)$/i;

export function hostPort(url: string): { host: string; port: string } {
  const parsed = new URL(url);
  const host = parsed.hostname || parsed.searchParams.get('host') || 'localhost';
  return { host, port: parsed.port || '5432' };
}

export async function openServer(): Promise<BenchServer> {
  const url = process.env.DATABASE_URL;
  if (url !== undefined && url !== '') {
    const { host, port } = hostPort(url);
    if (!LOOPBACK.test(host)) {
      throw new Error(
        `DATABASE_URL points at ${host}:${port}; the bench only loads loopback servers`,
      );
    }
    const stray = { count: 0, first: undefined };
    return {
      label: `${host}:${port}`,
      source: 'DATABASE_URL',
      stray,
      createPool: (config) =>
        guard(new pg.Pool({ connectionString: url, ...BASE_CONFIG, ...config }), stray),
      stop: async () => {},
    };
  }
  // Imported lazily so that a bench against DATABASE_URL never depends on the testing kit.
  const testing = (await import('../src/testing/index.js')) as {
    startLocalCluster(options: { replicas: number }): Promise<LocalCluster>;
  };
  const cluster = await testing.startLocalCluster({ replicas: 0 });
  const { host, port } = hostPort(cluster.primary.url);
  const stray = { count: 0, first: undefined };
  return {
    label: `${host}:${port}`,
    source: 'embedded',
    stray,
    createPool: (config) => guard(cluster.primary.createPool({ ...BASE_CONFIG, ...config }), stray),
    stop: () => cluster.stop(),
  };
}
