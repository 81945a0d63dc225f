/**
 * Finds the peer proxies' binaries. They come from the system's packages (Debian: `pgpool2`,
 * `pgbouncer`), not from npm; when one is missing its row is skipped with the command that
 * installs it.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export type PeerBinary =
  | { found: true; path: string; version: string }
  | { found: false; why: string };

interface Wanted {
  /** Executable name. */
  command: string;
  /** What to call it in messages. */
  label: string;
  /** Debian/Ubuntu package that ships it. */
  debianPackage: string;
  /** Environment variable that may name the binary directly. */
  envVar: string;
}

export const PGPOOL: Wanted = {
  command: 'pgpool',
  label: 'pgpool-II',
  debianPackage: 'pgpool2',
  envVar: 'BENCH_PGPOOL',
};

export const PGBOUNCER: Wanted = {
  command: 'pgbouncer',
  label: 'PgBouncer',
  debianPackage: 'pgbouncer',
  envVar: 'BENCH_PGBOUNCER',
};

/** sbin directories are searched too: Debian installs both proxies in /usr/sbin. */
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/opt/homebrew/bin'];

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function installHint(wanted: Wanted): string {
  return (
    `install it with \`sudo apt-get install -y ${wanted.debianPackage}\` (Debian/Ubuntu; ` +
    `\`apt-get install -y pgpool2 pgbouncer\` installs both), or name the binary in ${wanted.envVar}`
  );
}

/** The binary and its version, or why it cannot be used (with how to install it). */
export async function findBinary(wanted: Wanted): Promise<PeerBinary> {
  const fromEnv = process.env[wanted.envVar]?.trim();
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
  const file =
    fromEnv !== undefined && fromEnv !== ''
      ? fromEnv
      : dirs.map((d) => path.join(d, wanted.command)).find(executable);
  if (file === undefined || !executable(file)) {
    const where =
      fromEnv !== undefined && fromEnv !== ''
        ? `${wanted.envVar}=${fromEnv} is not an executable`
        : `\`${wanted.command}\` is not on PATH nor in ${EXTRA_DIRS.join(', ')}`;
    return { found: false, why: `${wanted.label} not found (${where}): ${installHint(wanted)}` };
  }
  try {
    // pgpool prints its version on stderr, PgBouncer on stdout.
    const { stdout, stderr } = await execFileAsync(file, ['--version'], { timeout: 5_000 });
    const version = `${stdout}\n${stderr}`.split('\n').find((l) => /\d+\.\d+/.test(l)) ?? '';
    return { found: true, path: file, version: version.trim() };
  } catch (err) {
    return {
      found: false,
      why: `${wanted.label} at ${file} did not answer --version (${(err as Error).message.trim()}): ${installHint(wanted)}`,
    };
  }
}
