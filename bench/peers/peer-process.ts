/**
 * A peer proxy (pgpool-II, PgBouncer) started by the bench: its own process group, run as the OS
 * user `postgres` when the bench runs as root (PgBouncer refuses to run as root, and the files
 * are then shared with the servers' user), its config in a private 0700 directory.
 *
 * Every path stops it, bounded in time:
 * - `stop()`: the proxy's own fast-shutdown signal, then SIGKILL to the whole group after
 *   STOP_TIMEOUT_MS, then the directory is removed;
 * - the process 'exit' hook and SIGINT/SIGTERM/SIGHUP (the testing kit's exit-cleanup, which
 *   also stops the embedded servers): SIGKILL to the group, directory removed;
 * - the bench itself SIGKILLed: a small detached guard notices within half a second and does
 *   the same.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { killOnExit, removeOnExit } from '../../src/testing/exit-cleanup.js';
import { ensurePostgresUser } from '../../src/testing/os-user.js';
import { answersQueries } from '../../src/testing/postgres-process.js';

/** How long a proxy may take to answer its first query. */
const START_TIMEOUT_MS = 20_000;
/** How long its fast shutdown may take before the group is SIGKILLed. */
const STOP_TIMEOUT_MS = 5_000;
/** After SIGKILL. */
const KILL_TIMEOUT_MS = 2_000;
const LOG_LINES = 40;

/** Who the proxy runs as: ourselves, or the OS user postgres when we are root. */
export interface RunAs {
  uid: number | undefined;
  gid: number | undefined;
  name: string;
}

export async function runAs(): Promise<RunAs> {
  if (process.getuid?.() !== 0)
    return { uid: undefined, gid: undefined, name: os.userInfo().username };
  const user = await ensurePostgresUser();
  return { uid: user.uid, gid: user.gid, name: user.name };
}

/** A private directory for one proxy's config, pid and socket files, owned by `user`. */
export class ConfigDir {
  readonly path: string;
  readonly #user: RunAs;
  readonly #untrack: () => void;

  private constructor(dir: string, user: RunAs) {
    this.path = dir;
    this.#user = user;
    this.#untrack = removeOnExit(dir);
  }

  static async create(prefix: string, user: RunAs): Promise<ConfigDir> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `rp-bench-${prefix}-`));
    await chmod(dir, 0o700);
    if (user.uid !== undefined) await chown(dir, user.uid, user.gid ?? user.uid);
    return new ConfigDir(dir, user);
  }

  /** Writes `name` (mode 0600, owned by the proxy's user); returns its absolute path. */
  async write(name: string, text: string): Promise<string> {
    const file = path.join(this.path, name);
    await writeFile(file, text, { mode: 0o600 });
    if (this.#user.uid !== undefined) await chown(file, this.#user.uid, this.#user.gid ?? 0);
    return file;
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true, maxRetries: 3 });
    this.#untrack();
  }
}

/** Runs in the guard: argv = [parentPid, pgid, dir]. */
const GUARD_SCRIPT = `
const [parent, pgid, dir] = process.argv.slice(1);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const timer = setInterval(() => {
  if (alive(Number(parent))) return;
  clearInterval(timer);
  try { process.kill(-Number(pgid), 'SIGKILL'); } catch {}
  setTimeout(() => {
    try { require('node:fs').rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }); } catch {}
    process.exit(0);
  }, 500);
}, 500);
`;

function startGuard(pgid: number, dir: string): ChildProcess {
  const guard = spawn(
    process.execPath,
    ['-e', GUARD_SCRIPT, String(process.pid), String(pgid), dir],
    {
      // Its own group, so Ctrl-C to ours does not end it before it is needed.
      detached: true,
      stdio: 'ignore',
    },
  );
  guard.on('error', () => {});
  guard.unref();
  return guard;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await delay(25);
  }
  return true;
}

export interface PeerProcessOptions {
  /** For messages: `pgpool-II`, `PgBouncer (replica-1)`. */
  name: string;
  binary: string;
  args: readonly string[];
  dir: ConfigDir;
  user: RunAs;
  /** Where it listens, for the readiness probe. */
  port: number;
  /** Credentials the readiness probe logs in with. */
  login: { user: string; password: string; database: string };
  /** The signal of the proxy's fast shutdown (pgpool: SIGINT; PgBouncer: SIGTERM). */
  stopSignal: NodeJS.Signals;
}

export class PeerProcess {
  readonly name: string;
  readonly port: number;
  readonly #options: PeerProcessOptions;
  readonly #log: string[] = [];
  #child: ChildProcess | undefined;
  #guard: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #exitCode: string | undefined;
  #untrack: () => void = () => {};
  #stopping: Promise<void> | undefined;

  constructor(options: PeerProcessOptions) {
    this.#options = options;
    this.name = options.name;
    this.port = options.port;
  }

  /** The last lines the proxy printed, for error messages. */
  logTail(count = 15): string {
    return this.#log.slice(-count).join('\n');
  }

  /** Spawns the proxy and resolves once a query through it answers; stops it on failure. */
  async start(): Promise<void> {
    const { binary, args, dir, user } = this.#options;
    const child = spawn(binary, args, {
      cwd: dir.path,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C', HOME: dir.path },
      ...(user.uid === undefined ? {} : { uid: user.uid, gid: user.gid }),
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitCode = signal ?? String(code);
        resolve();
      });
      child.once('error', (err) => {
        this.#exitCode = err.message;
        resolve();
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) {
          if (line.trim() === '') continue;
          this.#log.push(line);
          if (this.#log.length > LOG_LINES) this.#log.shift();
        }
      });
    }
    const pgid = child.pid;
    if (pgid !== undefined) {
      this.#guard = startGuard(pgid, dir.path);
      const guard = this.#guard;
      this.#untrack = killOnExit(() => {
        killGroup(pgid, 'SIGKILL');
        rmSync(dir.path, { recursive: true, force: true });
        guard.kill('SIGKILL');
      });
    }
    try {
      await this.#waitReady();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let last: unknown;
    while (Date.now() < deadline) {
      if (this.#exitCode !== undefined) {
        throw new Error(
          `${this.name} exited (${this.#exitCode}) while starting:\n${this.logTail()}`,
        );
      }
      try {
        await answersQueries(this.port, this.#options.login, 2_000);
        return;
      } catch (err) {
        last = err;
        await delay(100);
      }
    }
    throw new Error(
      `${this.name} did not answer a query within ${START_TIMEOUT_MS} ms (${(last as Error)?.message}):\n${this.logTail()}`,
    );
  }

  /** Stops the proxy (fast shutdown, then SIGKILL of its group) and removes its directory. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const pgid = this.#child?.pid;
    if (pgid !== undefined) {
      if (this.#exitCode === undefined) this.#child?.kill(this.#options.stopSignal);
      const exited = await Promise.race([
        this.#exited.then(() => true),
        delay(STOP_TIMEOUT_MS, false),
      ]);
      // The leader may be gone while its children (pgpool's) linger: the group goes either way.
      if (!exited || groupAlive(pgid)) {
        if (await waitGroupGone(pgid, exited ? 500 : 0)) {
          // gone on its own
        } else {
          killGroup(pgid, 'SIGKILL');
          await waitGroupGone(pgid, KILL_TIMEOUT_MS);
        }
      }
    }
    this.#guard?.kill('SIGKILL');
    await this.#options.dir.remove();
    this.#untrack();
  }
}
