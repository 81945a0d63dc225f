/**
 * Helpers of the packaging tests: a bounded child process, the environment to give npm, and
 * whether the build in dist/ is older than the sources.
 */
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Set when the command had to be killed after `timeoutMs`. */
  timedOut: boolean;
  /** Set when it could not be started at all (ENOENT: not installed). */
  spawnError?: Error;
}

export interface RunOptions {
  cwd: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a command in its own process group and resolves with its exit and output. Past
 * `timeoutMs` the whole group gets SIGTERM, and SIGKILL 5 s later, so nothing it started (npm's
 * children, PostgreSQL servers) outlives the test.
 */
export function run(
  command: string,
  args: readonly string[],
  options: RunOptions,
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? childEnv(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), 5_000);
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({ code: null, signal: null, stdout, stderr, timedOut, spawnError: err });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** One line describing how a command ended, with the end of its output, for assertions. */
export function describeRun(what: string, result: RunResult): string {
  const how = result.spawnError
    ? `could not start (${result.spawnError.message})`
    : result.timedOut
      ? 'timed out'
      : `exited ${result.code ?? result.signal}`;
  const tail = (s: string) => s.trimEnd().split('\n').slice(-25).join('\n');
  // A crash prints what matters first (`node:events` ... "Emitted 'error' event on X instance"):
  // stderr keeps its head as well as its tail.
  const ends = (s: string) => {
    const lines = s.trimEnd().split('\n');
    return lines.length <= 60
      ? lines.join('\n')
      : [...lines.slice(0, 30), '...', ...lines.slice(-30)].join('\n');
  };
  return `${what} ${how}\n--- stdout ---\n${tail(result.stdout)}\n--- stderr ---\n${ends(result.stderr)}`;
}

/**
 * The environment for npm and the installed package: ours without what `npm test` adds about
 * this project (its prefix, package fields and lifecycle), which would point a child npm back at
 * this repository. The registry, cache and user config stay.
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package_|lifecycle_|config_local_prefix$|command$)/i.test(key)) continue;
    if (key === 'INIT_CWD') continue;
    env[key] = value;
  }
  // npm_config_yes=false: npx runs the installed bin and never installs one.
  return { ...env, FORCE_COLOR: '0', NO_UPDATE_NOTIFIER: '1', npm_config_yes: 'false', ...extra };
}

async function walk(dir: string, visit: (file: string, mtimeMs: number) => void): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await walk(full, visit);
    else if (entry.isFile()) visit(full, (await stat(full)).mtimeMs);
  }
}

/**
 * Why the build in `root`/dist cannot be packed as it is (a file missing, or older than a
 * source it is built from); undefined when it is fresh.
 */
export async function whyDistIsStale(
  root: string,
  builtFiles: readonly string[],
): Promise<string | undefined> {
  let newestSource = 0;
  let newestName = '';
  const note = (file: string, mtimeMs: number) => {
    if (mtimeMs > newestSource) {
      newestSource = mtimeMs;
      newestName = path.relative(root, file);
    }
  };
  await walk(path.join(root, 'src'), note);
  for (const file of ['tsup.config.ts', 'tsconfig.json']) {
    note(path.join(root, file), (await stat(path.join(root, file))).mtimeMs);
  }
  for (const file of builtFiles) {
    const built = await stat(path.join(root, file)).catch(() => undefined);
    if (built === undefined) return `${file} is missing`;
    if (built.mtimeMs < newestSource) return `${file} is older than ${newestName}`;
  }
  return undefined;
}
