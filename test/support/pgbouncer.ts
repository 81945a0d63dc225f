/**
 * A real PgBouncer (Debian's `pgbouncer` package, or any on PATH) in front of the test cluster's
 * nodes, for the suite that checks what the library does behind a pooler (docs/pgbouncer.md).
 *
 * `startPgBouncer()` writes an ini and an auth file into a fresh temporary directory, starts
 * PgBouncer on a free port of 127.0.0.1 (and a unix socket in that directory), and resolves once
 * it accepts a login. PgBouncer refuses to run as root, so as root it runs as the OS user the
 * cluster's servers run as (`postgres`), which then owns the directory. Each entry of
 * `databases` becomes a PgBouncer database that leads to one node, logging in as the node's
 * `postgres` superuser with the node's password (SCRAM from PgBouncer to the server, and SCRAM
 * from the client to PgBouncer, with the same password).
 *
 * `usePgBouncer()` starts one per test file after the cluster and stops it in `afterAll`; an exit
 * hook SIGKILLs it and removes its directory should the worker die first. When no `pgbouncer`
 * binary is installed, the file's tests are skipped with a message saying so, except under
 * `CI=true`, where they fail (`.ci/run` installs it).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { blockedAncestor } from '../../src/testing/access.js';
import type { ClusterNode } from '../../src/testing/cluster-node.js';
import { killOnExit, removeOnExit } from '../../src/testing/exit-cleanup.js';
import { freePort } from '../../src/testing/free-port.js';
import { ensurePostgresUser, type OsUser } from '../../src/testing/os-user.js';
import type { ClusterHandle } from './cluster.js';

export type PoolMode = 'session' | 'transaction' | 'statement';

export interface PgBouncerOptions {
  /** `pool_mode`. */
  poolMode: PoolMode;
  /** PgBouncer database name (letters, digits, `_`) -> the node it leads to. */
  databases: Readonly<Record<string, ClusterNode>>;
  /** `default_pool_size`: server connections per database and user. @default 4 */
  defaultPoolSize?: number;
  /** `max_client_conn`. @default 100 */
  maxClientConn?: number;
  /** Further `[pgbouncer]` settings, written after (and so overriding) the ones below. */
  settings?: Readonly<Record<string, string | number>>;
  /** Time allowed for PgBouncer to accept a login. @default 10_000 */
  startTimeoutMs?: number;
}

export interface PgBouncer {
  readonly host: string;
  readonly port: number;
  readonly poolMode: PoolMode;
  /** `PgBouncer 1.18.0`, from `pgbouncer --version`. */
  readonly version: string;
  /** Connection settings for a client of `database` through PgBouncer. */
  config(database: string): pg.ClientConfig;
  /**
   * A pg.Pool of clients of `database` through PgBouncer, with an 'error' listener that ignores
   * errors of idle clients (servers are killed on purpose). Ended by `stop()`.
   */
  createPool(database: string, config?: pg.PoolConfig): pg.Pool;
  /** Runs a command on the admin console (`SHOW POOLS`, `RECONNECT`, ...) and returns its rows. */
  admin(command: string): Promise<Record<string, unknown>[]>;
  /** The last lines PgBouncer logged. */
  logTail(): string[];
  /** SIGTERM (SIGKILL after 3 s); ends the pools it made and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const LOG_LINES = 50;

/**
 * Where a `pgbouncer` binary is, or undefined: `PGBOUNCER_BIN` when set (and only there), else
 * PATH, then Debian's /usr/sbin.
 */
export function findPgBouncer(): string | undefined {
  const explicit = process.env.PGBOUNCER_BIN?.trim();
  if (explicit !== undefined && explicit !== '') {
    try {
      accessSync(explicit, constants.X_OK);
      return explicit;
    } catch {
      return undefined;
    }
  }
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const file = path.join(dir, 'pgbouncer');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The binary, found when the file is collected: usable in titles and `skipIf`. */
export const PGBOUNCER_BINARY = findPgBouncer();

/** `PgBouncer 1.18.0`, the first line of `pgbouncer --version`, or undefined without one. */
export const PGBOUNCER_VERSION: string | undefined = (() => {
  if (PGBOUNCER_BINARY === undefined) return undefined;
  try {
    const out = execFileSync(PGBOUNCER_BINARY, ['--version'], { encoding: 'utf8', timeout: 5_000 });
    return out.split('\n')[0]?.trim() || undefined;
  } catch {
    return undefined;
  }
})();

/**
 * Whether this PgBouncer tracks protocol-level named prepared statements in transaction and
 * statement mode (`max_prepared_statements`, PgBouncer 1.21 and later).
 */
export const TRACKS_PREPARED_STATEMENTS = ((): boolean => {
  const match = /(\d+)\.(\d+)/.exec(PGBOUNCER_VERSION ?? '');
  if (match === null) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 1 || (major === 1 && minor >= 21);
})();

/** CI must run every test: PgBouncer missing there is a failure (see .ci/run), not a skip. */
const MUST_RUN = /^(1|true|yes)$/i.test(process.env.CI?.trim() ?? '');

export const PGBOUNCER_MISSING =
  'no pgbouncer binary (PGBOUNCER_BIN, PATH, /usr/sbin); install it (apt-get install pgbouncer) ' +
  'to run these tests; under CI=true they fail instead of skipping';

/** A value for the ini: PgBouncer reads the rest of the line, so line breaks are refused. */
function iniValue(key: string, value: string | number): string {
  const text = String(value);
  if (/[\r\n]/.test(text)) throw new Error(`startPgBouncer: ${key} must be a single line`);
  return text;
}

/** A libpq-style `key=value` for a [databases] line, quoted when it must be. */
function connValue(value: string | number): string {
  const text = String(value);
  return /^[A-Za-z0-9_.\-/]+$/.test(text) ? text : `'${text.replace(/[\\']/g, '\\$&')}'`;
}

/** The node's password, from its URL (the kit keeps it private otherwise). */
function passwordOf(node: ClusterNode): string {
  return decodeURIComponent(new URL(node.url).password);
}

/** Resolves true once a TCP connect to `port` succeeds, false once `deadline` passes. */
async function waitForPort(
  port: number,
  deadline: number,
  exited: () => boolean,
): Promise<boolean> {
  while (Date.now() < deadline && !exited()) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: HOST, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

class RunningPgBouncer implements PgBouncer {
  readonly host = HOST;
  readonly #pools = new Set<pg.Pool>();
  #stopping: Promise<void> | undefined;

  constructor(
    readonly port: number,
    readonly poolMode: PoolMode,
    readonly version: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
    private readonly password: string,
    private readonly lines: string[],
    private readonly untrack: () => void,
  ) {}

  config(database: string): pg.ClientConfig {
    return { host: HOST, port: this.port, database, user: 'postgres', password: this.password };
  }

  createPool(database: string, config: pg.PoolConfig = {}): pg.Pool {
    const pool = new pg.Pool({ ...this.config(database), ...config });
    pool.on('error', () => {});
    this.#pools.add(pool);
    return pool;
  }

  async admin(command: string): Promise<Record<string, unknown>[]> {
    const client = new pg.Client(this.config('pgbouncer'));
    client.on('error', () => {});
    await client.connect();
    try {
      // The admin console speaks only the simple query protocol: no values.
      const result = await client.query(command);
      return result.rows as Record<string, unknown>[];
    } finally {
      await client.end().catch(() => {});
    }
  }

  logTail(): string[] {
    return [...this.lines];
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await Promise.all(
      [...this.#pools]
        .filter((p) => !p.ended)
        .map((p) =>
          Promise.race([p.end().catch(() => {}), new Promise((r) => setTimeout(r, 2_000))]),
        ),
    );
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }
    this.untrack();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Starts PgBouncer in front of `options.databases`; see the file comment. */
export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  const binary = PGBOUNCER_BINARY;
  if (binary === undefined) throw new Error(`startPgBouncer: ${PGBOUNCER_MISSING}`);
  const entries = Object.entries(options.databases);
  if (entries.length === 0) throw new Error('startPgBouncer: no databases given');
  for (const [name] of entries) {
    if (!/^[A-Za-z0-9_]+$/.test(name)) {
      throw new Error(`startPgBouncer: database name ${name} must be letters, digits or _`);
    }
  }
  const passwords = new Set(entries.map(([, node]) => passwordOf(node)));
  if (passwords.size !== 1) throw new Error('startPgBouncer: the nodes must share one password');
  const password = passwordOf(entries[0]![1]);
  const user: OsUser | undefined =
    process.getuid?.() === 0 ? await ensurePostgresUser() : undefined;

  const dir = await mkdtemp(path.join(os.tmpdir(), 'rp-pgbouncer-'));
  const untrackDir = removeOnExit(dir);
  let child: ChildProcess | undefined;
  let untrackKill: (() => void) | undefined;
  try {
    const port = await freePort();
    const authFile = path.join(dir, 'userlist.txt');
    const iniFile = path.join(dir, 'pgbouncer.ini');
    const quoted = (s: string) => `"${s.replaceAll('"', '""')}"`;
    await writeFile(authFile, `${quoted('postgres')} ${quoted(password)}\n`, {
      mode: 0o600,
    });
    const settings: Record<string, string | number> = {
      listen_addr: HOST,
      listen_port: port,
      unix_socket_dir: dir,
      auth_type: 'scram-sha-256',
      auth_file: authFile,
      admin_users: 'postgres',
      pool_mode: options.poolMode,
      max_client_conn: options.maxClientConn ?? 100,
      default_pool_size: options.defaultPoolSize ?? 4,
      pidfile: path.join(dir, 'pgbouncer.pid'),
      // Fail fast when a server is down, instead of PgBouncer's 15 s / 120 s defaults.
      server_login_retry: 1,
      server_connect_timeout: 2,
      query_wait_timeout: 5,
      // pg does not send it, but JDBC-style clients do; harmless here.
      ignore_startup_parameters: 'extra_float_digits',
      ...options.settings,
    };
    const databaseLines = entries.map(
      ([name, node]) =>
        `${name} = host=${connValue(node.host)} port=${node.port} dbname=postgres user=postgres`,
    );
    const ini = [
      '[databases]',
      ...databaseLines,
      '',
      '[pgbouncer]',
      ...Object.entries(settings).map(([k, v]) => `${k} = ${iniValue(k, v)}`),
      '',
    ].join('\n');
    await writeFile(iniFile, ini, { mode: 0o600 });
    if (user !== undefined) {
      for (const file of [authFile, iniFile, dir]) await chown(file, user.uid, user.gid);
    }
    await chmod(dir, 0o700);
    if (user !== undefined) {
      const blocked = await blockedAncestor(dir, user);
      if (blocked !== undefined) {
        throw new Error(
          `startPgBouncer: PgBouncer runs as the OS user ${user.name}, who cannot pass through ` +
            `${blocked} to reach ${dir}; set TMPDIR to a directory it can reach`,
        );
      }
    }

    const version = PGBOUNCER_VERSION ?? 'unknown';
    const lines: string[] = [];
    child = spawn(binary, [iniFile], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }),
    });
    const proc = child;
    untrackKill = killOnExit(() => proc.kill('SIGKILL'));
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() === '') continue;
        lines.push(line);
        if (lines.length > LOG_LINES) lines.shift();
      }
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    let spawnError: Error | undefined;
    proc.once('error', (err) => {
      spawnError = err;
    });
    const exited = () =>
      spawnError !== undefined || proc.exitCode !== null || proc.signalCode !== null;

    const timeoutMs = options.startTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const listening = await waitForPort(port, deadline, exited);
    if (!listening) {
      // Its last words arrive after 'exit': wait for the pipes to close (briefly).
      if (exited()) {
        await Promise.race([
          new Promise((r) => proc.once('close', r)),
          new Promise((r) => setTimeout(r, 500)),
        ]);
      }
      const why = exited()
        ? `exited (${spawnError?.message ?? `code ${proc.exitCode}, signal ${proc.signalCode}`})`
        : `did not listen on ${HOST}:${port} within ${timeoutMs} ms`;
      throw new Error(
        `startPgBouncer: ${binary} ${why}; its last lines:\n${lines.slice(-15).join('\n')}`,
      );
    }
    const untrack = () => {
      untrackKill?.();
      untrackDir();
    };
    const bouncer = new RunningPgBouncer(
      port,
      options.poolMode,
      version,
      proc,
      dir,
      password,
      lines,
      untrack,
    );
    // A login through the admin console: auth file and settings are as intended.
    try {
      await bouncer.admin('SHOW VERSION');
    } catch (err) {
      await bouncer.stop();
      throw new Error(
        `startPgBouncer: PgBouncer listens but refused the admin login: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return bouncer;
  } catch (err) {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
    untrackKill?.();
    await rm(dir, { recursive: true, force: true });
    untrackDir();
    throw err;
  }
}

export interface PgBouncerHandle {
  /** The running PgBouncer; inside tests and hooks, after `beforeAll` has run. */
  readonly bouncer: PgBouncer;
}

/**
 * Starts PgBouncer for the calling test file, in front of the nodes `databases` picks from the
 * cluster, after `useCluster()`'s own `beforeAll` (call it after `useCluster`). Without a
 * binary the tests are skipped with {@link PGBOUNCER_MISSING}, or fail under CI=true.
 */
export function usePgBouncer(
  cluster: ClusterHandle,
  options: (c: ClusterHandle['cluster']) => PgBouncerOptions,
): PgBouncerHandle {
  let bouncer: PgBouncer | undefined;
  let startError: Error | undefined;
  let warned = false;

  beforeAll(async () => {
    if (PGBOUNCER_BINARY === undefined) {
      startError = new Error(PGBOUNCER_MISSING);
      return;
    }
    let c: ClusterHandle['cluster'];
    try {
      c = cluster.cluster;
    } catch {
      return; // useCluster's beforeEach reports why the cluster is missing
    }
    try {
      bouncer = await startPgBouncer(options(c));
    } catch (err) {
      startError = err instanceof Error ? err : new Error(String(err));
    }
  });
  beforeEach((ctx) => {
    if (startError === undefined) return;
    if (MUST_RUN) throw startError;
    const note = `skipped: PgBouncer could not start (${startError.message.split('\n')[0]})`;
    if (!warned) {
      warned = true;
      console.warn(note);
    }
    ctx.skip(note);
  });
  afterAll(async () => {
    await bouncer?.stop();
    bouncer = undefined;
  });

  return {
    get bouncer(): PgBouncer {
      if (startError !== undefined) throw startError;
      if (bouncer === undefined) {
        throw new Error('usePgBouncer(): PgBouncer exists only inside tests, after beforeAll');
      }
      return bouncer;
    },
  };
}
