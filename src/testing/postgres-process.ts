import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { killOnExit } from './exit-cleanup.js';
import { forEachLine } from './output-lines.js';
import { descendantPids, isGone, isStopped, signalAll, sleepSync } from './process-tree.js';

/** How long `start()` waits for the first successful `SELECT 1`. */
export const START_TIMEOUT_MS = 30_000;
/** How long a fast shutdown (SIGINT) may take before it is called hung. */
export const STOP_TIMEOUT_MS = 10_000;
/** How long a SIGKILLed process tree may take to disappear. */
const KILL_TIMEOUT_MS = 5_000;
/** Lines of server output kept per node for error messages. */
const LOG_LINES = 200;
/** Lines of server output quoted in an error message. */
const ERROR_LOG_LINES = 25;

/** The last lines a server wrote, kept so a failed start can say why. */
export class LogTail {
  readonly #lines: string[] = [];
  #total = 0;

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > LOG_LINES) this.#lines.shift();
    this.#total += 1;
  }

  /** A position to pass to `since()`. */
  mark(): number {
    return this.#total;
  }

  /** The lines written after `mark` that are still held. */
  since(mark: number): string[] {
    const wanted = Math.min(this.#total - mark, this.#lines.length);
    return wanted <= 0 ? [] : this.#lines.slice(-wanted);
  }

  last(count: number): string[] {
    return this.#lines.slice(-count);
  }
}

/** Why a server did not come up, with what it printed. */
export class ClusterStartError extends Error {
  readonly code = 'E_CLUSTER_START';
  /** The server's own output from this start attempt. */
  readonly log: readonly string[];
  /** The port was taken between choosing it and binding it; a new port may succeed. */
  readonly addressInUse: boolean;

  constructor(message: string, log: readonly string[], cause?: unknown) {
    const shown = log.slice(-ERROR_LOG_LINES);
    super(
      shown.length === 0
        ? message
        : `${message}\n--- last server log lines ---\n${shown.join('\n')}`,
      { cause },
    );
    this.name = 'ClusterStartError';
    this.log = log;
    this.addressInUse = log.some((line) => line.includes('Address already in use'));
  }
}

export interface PostgresProcessOptions {
  readonly name: string;
  /** Absolute path of the `postgres` server binary. */
  readonly binary: string;
  readonly dataDir: string;
  readonly port: number;
  /** Password of the `postgres` role, for the readiness probe. */
  readonly password: string;
  /** OS user to run as; set when we are root, because PostgreSQL refuses to run as root. */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly onLog?: ((line: string) => void) | undefined;
}

/** Lets Node exit while the server runs; the 'exit' hook then kills it. */
function unref(handle: unknown): void {
  const maybe = handle as { unref?: () => void } | null;
  maybe?.unref?.();
}

/**
 * Connects to 127.0.0.1:`port` and runs `SELECT 1`; resolves only when the server (or a proxy in
 * front of it) really answers queries. Shared with the bench's peer proxies.
 */
export async function answersQueries(
  port: number,
  login: { user: string; password?: string; database: string },
  timeoutMs: number,
): Promise<void> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    ...login,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  // A refused or reset connection is expected while the server starts; the rejection is enough.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    // Not awaited: ending a client whose connect failed may never settle, and nothing waits on it.
    client.end().catch(() => {});
  }
}

/** Resolves true when `pids` are all gone, false when `timeoutMs` passes first. */
async function waitGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some((pid) => !isGone(pid))) {
    if (Date.now() >= deadline) return false;
    await delay(20);
  }
  return true;
}

/**
 * One postmaster on a fixed port and data directory, started by spawning the `postgres` binary
 * directly so that a standby (which never prints "ready to accept connections") and a primary
 * are controlled the same way, with real signals.
 */
export class PostgresProcess {
  readonly name: string;
  readonly log = new LogTail();
  /** Fixed after the first successful start; changed only to retry a port that was taken. */
  port: number;
  readonly options: PostgresProcessOptions;
  #child: ChildProcess | undefined;
  #running = false;
  #exited: Promise<void> = Promise.resolve();
  /** The pids we SIGSTOPped, so `resume()` continues exactly those. */
  #paused: number[] | undefined;
  /** Why the last spawn failed (EACCES, ENOENT), so `start()` can say so instead of "exited". */
  #spawnError: Error | undefined;

  constructor(options: PostgresProcessOptions) {
    this.options = options;
    this.name = options.name;
    this.port = options.port;
  }

  get pid(): number | undefined {
    return this.#running ? this.#child?.pid : undefined;
  }

  isRunning(): boolean {
    return this.#running;
  }

  isPaused(): boolean {
    return this.#paused !== undefined;
  }

  /** Spawns the server and resolves once `SELECT 1` succeeds; on failure it leaves it stopped. */
  async start(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    if (this.#running) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const mark = this.log.mark();
      this.#spawn();
      try {
        await this.#waitReady(deadline, mark);
        return;
      } catch (err) {
        await this.kill();
        const lines = this.log.since(mark);
        // After a SIGKILL, a backend that was being forked at that instant can outlive the
        // postmaster for a moment and keep the old shared memory attached; the new postmaster
        // refuses to start until it is gone, so that one failure is worth another try.
        const shmBusy = lines.some((l) => l.includes('pre-existing shared memory block'));
        if (!shmBusy || Date.now() + 250 >= deadline) throw err;
        await delay(200);
      }
    }
  }

  #spawn(): void {
    const { binary, dataDir, uid, gid, onLog } = this.options;
    const child = spawn(binary, ['-D', dataDir, '-p', String(this.port)], {
      cwd: dataDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Messages are matched (port in use, shared memory busy), so they must be in English.
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...(uid === undefined ? {} : { uid, gid }),
    });
    this.#child = child;
    this.#running = true;
    this.#spawnError = undefined;
    const onLine = (line: string): void => {
      this.log.push(line);
      onLog?.(line);
    };
    forEachLine(child.stdout, onLine);
    forEachLine(child.stderr, onLine);
    const untrack = killOnExit(() => {
      const pid = child.pid;
      if (pid !== undefined) signalAll([pid, ...descendantPids(pid)], 'SIGKILL');
    });
    this.#exited = new Promise<void>((resolve) => {
      const onGone = (): void => {
        if (this.#child === child) {
          this.#running = false;
          this.#paused = undefined;
        }
        untrack();
        resolve();
      };
      child.once('exit', onGone);
      child.once('error', (err) => {
        if (this.#child === child) this.#spawnError = err;
        onLine(`[spawn] ${err.message}`);
        // 'exit' does not always follow a failed spawn.
        if (child.pid === undefined) onGone();
      });
    });
    unref(child);
    unref(child.stdout);
    unref(child.stderr);
  }

  async #waitReady(deadline: number, mark: number): Promise<void> {
    let lastError: unknown;
    for (;;) {
      if (!this.#running && this.#spawnError !== undefined) {
        const as = this.options.uid === undefined ? '' : ` as uid ${this.options.uid}`;
        throw new ClusterStartError(
          `${this.name}: could not run ${this.options.binary}${as}: ${this.#spawnError.message}`,
          this.log.since(mark),
          this.#spawnError,
        );
      }
      if (!this.#running) {
        throw new ClusterStartError(
          `${this.name} (port ${this.port}) exited during start-up`,
          this.log.since(mark),
          lastError,
        );
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new ClusterStartError(
          `${this.name} (port ${this.port}) did not answer SELECT 1 in time`,
          this.log.since(mark),
          lastError,
        );
      }
      try {
        await answersQueries(
          this.port,
          { user: 'postgres', password: this.options.password, database: 'postgres' },
          Math.min(remaining, 2_000),
        );
        return;
      } catch (err) {
        lastError = err;
      }
      await delay(Math.min(50, Math.max(remaining, 0)));
    }
  }

  /** Resolves true once the postmaster has exited, false if `timeoutMs` passes first. */
  async #waitExit(timeoutMs: number): Promise<boolean> {
    if (!this.#running) return true;
    const ac = new AbortController();
    // The timer is what keeps Node alive during the wait: the child and its pipes are unref'd.
    const timeout = delay(timeoutMs, false, { signal: ac.signal }).catch(() => false);
    const exited = await Promise.race([this.#exited.then(() => true), timeout]);
    ac.abort();
    return exited;
  }

  /**
   * SIGKILL, as in a crash. Resolves after the postmaster and its backends are gone, because
   * orphaned backends keep the shared memory attached and would block the next `start()`.
   */
  async kill(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    const children = descendantPids(pid);
    const wasPaused = this.isPaused();
    signalAll([pid], 'SIGKILL');
    // Stopped backends would never see that their postmaster died; let them run and find out,
    // which is what happens to the backends of a server that really crashed.
    if (wasPaused) signalAll(children, 'SIGCONT');
    await this.#waitExit(KILL_TIMEOUT_MS);
    if (!(await waitGone(children, KILL_TIMEOUT_MS))) {
      signalAll(children, 'SIGKILL');
      await waitGone(children, KILL_TIMEOUT_MS);
    }
  }

  /**
   * Fast shutdown (SIGINT). Resolves true when it finished within `timeoutMs`; otherwise the
   * server is SIGKILLed and it resolves false.
   */
  async stop(timeoutMs = STOP_TIMEOUT_MS): Promise<boolean> {
    const pid = this.pid;
    if (pid === undefined) return true;
    // A stopped process keeps SIGINT pending until it is continued.
    this.resume();
    signalAll([pid], 'SIGINT');
    if (await this.#waitExit(timeoutMs)) return true;
    await this.kill();
    return false;
  }

  /** SIGSTOP the postmaster and every backend, so open connections hang as well as new ones. */
  pause(): void {
    const pid = this.pid;
    if (pid === undefined) throw new Error(`${this.name} is not running; start() it first`);
    signalAll([pid], 'SIGSTOP');
    // Wait until the kernel has really stopped it, so no fork is half done when children are
    // listed and no new backend can appear afterwards.
    for (let i = 0; i < 200 && !isStopped(pid); i++) sleepSync(1);
    const children = descendantPids(pid);
    signalAll(children, 'SIGSTOP');
    this.#paused = [...(this.#paused ?? []), pid, ...children];
  }

  /** SIGCONT exactly what `pause()` stopped; a no-op when not paused. */
  resume(): void {
    const paused = this.#paused;
    if (paused === undefined) return;
    this.#paused = undefined;
    // Backends first, so the postmaster never runs while they are still frozen.
    signalAll(new Set(paused.reverse()), 'SIGCONT');
  }
}
