import pg from 'pg';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import {
  type ClusterNode,
  type LocalCluster,
  type LocalClusterOptions,
  startLocalCluster,
} from '../../src/testing/index.js';
import { waitForReplay } from '../../src/testing/replication.js';

/**
 * One real cluster per test file: `useCluster()` starts it in `beforeAll` and stops it in
 * `afterAll`. With `DATABASE_URL` set (and optionally `REPLICA_URLS`, comma-separated) the tests
 * run against those servers instead, and only what needs no process control can run.
 *
 * When the cluster cannot start, every test of the file fails with the reason under `CI=true`;
 * elsewhere they are skipped with the reason (printed once as a warning, too), as the Redis
 * tests do without `REQUIRE_REDIS`.
 *
 * @example
 * const db = useCluster({ replicas: 2 });
 * it('reads', async () => { const pool = db.cluster.primary.createPool(); ... });
 * describe.skipIf(!db.canControlProcesses)(`kill (${NEEDS_LOCAL_CLUSTER})`, () => { ... });
 */

/**
 * True when DATABASE_URL points the tests at an external server (a blank value does not), so
 * tests that control server processes cannot run. Known when the file is collected.
 */
export const EXTERNAL_DATABASE = envUrl('DATABASE_URL') !== undefined;

/**
 * For the titles of `skipIf(!canControlProcesses)` blocks. A title shows whether or not the
 * block is skipped, so it names DATABASE_URL only when that is in fact why it is skipped.
 */
export const NEEDS_LOCAL_CLUSTER = EXTERNAL_DATABASE
  ? 'needs the local cluster; skipped because DATABASE_URL is set'
  : 'needs the local cluster';

/** CI must run every test: a cluster that cannot start there is a failure, not a skip. */
const MUST_START = /^(1|true|yes)$/i.test(process.env.CI?.trim() ?? '');

export interface ClusterHandle {
  /** The cluster; available inside tests and hooks, after `beforeAll` has run. */
  readonly cluster: LocalCluster;
  /**
   * False when DATABASE_URL points the tests at an external server: its nodes' `kill`, `stop`,
   * `start`, `pause` and `resume` throw. Known when the file is collected, so usable in `skipIf`.
   */
  readonly canControlProcesses: boolean;
  /** Replicas the tests will get: `options.replicas` locally, the REPLICA_URLS count otherwise. */
  readonly replicaCount: number;
}

/** The environment's URL, treating an empty variable as unset. */
function envUrl(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function replicaUrls(): string[] {
  return (envUrl('REPLICA_URLS') ?? '')
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
}

/** A server we only connect to; its processes belong to someone else. */
class ExternalNode implements ClusterNode {
  readonly host: string;
  readonly port: number;
  readonly pid = undefined;

  constructor(
    readonly name: string,
    readonly role: 'primary' | 'replica',
    readonly url: string,
    private readonly pools: Set<pg.Pool>,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (err) {
      throw new Error(
        `${name}: ${role === 'primary' ? 'DATABASE_URL' : 'REPLICA_URLS'} must hold postgres:// URLs`,
        {
          cause: err,
        },
      );
    }
    this.host = parsed.hostname;
    this.port = parsed.port === '' ? 5432 : Number(parsed.port);
  }

  createPool(config: pg.PoolConfig = {}): pg.Pool {
    const pool = new pg.Pool({ connectionString: this.url, ...config });
    // Same contract as the local cluster's pools: idle-client errors do not end the process.
    pool.on('error', () => {});
    this.pools.add(pool);
    return pool;
  }

  #unsupported(method: string): Error {
    return new Error(
      `${this.name}.${method}() needs the local cluster, but DATABASE_URL is set, so the tests ` +
        'use an external server whose processes they cannot control; unset DATABASE_URL to run this',
    );
  }

  kill(): Promise<void> {
    return Promise.reject(this.#unsupported('kill'));
  }

  stop(): Promise<void> {
    return Promise.reject(this.#unsupported('stop'));
  }

  start(): Promise<void> {
    return Promise.reject(this.#unsupported('start'));
  }

  pause(): void {
    throw this.#unsupported('pause');
  }

  resume(): void {
    throw this.#unsupported('resume');
  }

  /** Unknown without asking; assumed up, as the tests could not run otherwise. */
  isRunning(): boolean {
    return true;
  }
}

function externalCluster(primaryUrl: string, replicas: readonly string[]): LocalCluster {
  const pools = new Set<pg.Pool>();
  const primary = new ExternalNode('primary', 'primary', primaryUrl, pools);
  const replicaNodes = replicas.map(
    (url, i) => new ExternalNode(`replica-${i + 1}`, 'replica', url, pools),
  );
  const target = (node: ExternalNode) => ({
    name: node.name,
    connection: { connectionString: node.url },
  });
  return {
    primary,
    replicas: replicaNodes,
    nodes: [primary, ...replicaNodes],
    promote: () =>
      Promise.reject(
        new Error(
          'promote() needs the local cluster, but DATABASE_URL is set; unset DATABASE_URL to run this',
        ),
      ),
    waitForReplication: (timeoutMs = 10_000) =>
      waitForReplay(target(primary), replicaNodes.map(target), timeoutMs),
    // The servers are not ours to stop; only the pools we opened are closed.
    stop: async () => {
      await Promise.all([...pools].filter((p) => !p.ended).map((p) => p.end().catch(() => {})));
    },
  };
}

/** The skip message: the first line of the reason (a start error may quote server log lines). */
function skipNote(err: Error): string {
  const reason = err.message.split('\n')[0];
  return `skipped: the cluster could not start (${reason}); under CI=true this fails instead`;
}

/** Starts a cluster for the calling test file (or connects to DATABASE_URL); see above. */
export function useCluster(options: LocalClusterOptions = {}): ClusterHandle {
  const databaseUrl = envUrl('DATABASE_URL');
  const external = databaseUrl === undefined ? undefined : replicaUrls();
  let cluster: LocalCluster | undefined;
  let startError: Error | undefined;

  beforeAll(async () => {
    try {
      cluster =
        databaseUrl === undefined || external === undefined
          ? await startLocalCluster(options)
          : externalCluster(databaseUrl, external);
    } catch (err) {
      // Kept for beforeEach: a failed beforeAll would only mark the tests as skipped.
      startError = err instanceof Error ? err : new Error(String(err));
      // Shown once per file, with the server log lines the one-line skip note leaves out.
      const details = startError.message.split('\n').slice(1);
      if (!MUST_START) console.warn([skipNote(startError), ...details].join('\n'));
    }
  });
  beforeEach((ctx) => {
    if (startError === undefined) return;
    if (MUST_START) throw startError;
    ctx.skip(skipNote(startError));
  });
  afterAll(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  return {
    get cluster(): LocalCluster {
      // A file's own beforeAll that uses the cluster must fail with the real reason.
      if (startError !== undefined) {
        throw new Error(`useCluster(): the cluster could not start: ${startError.message}`, {
          cause: startError,
        });
      }
      if (cluster === undefined) {
        throw new Error(
          'useCluster(): the cluster exists only inside tests and hooks, after beforeAll has run',
        );
      }
      return cluster;
    },
    canControlProcesses: databaseUrl === undefined,
    replicaCount: external?.length ?? options.replicas ?? 2,
  };
}
