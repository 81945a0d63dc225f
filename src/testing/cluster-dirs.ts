import { readFileSync } from 'node:fs';
import { chmod, chown, cp, lchown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { commandLine, descendantPids, isGone, signalAll } from './process-tree.js';

/**
 * Where cluster data directories live and how they are made, owned, marked and swept.
 *
 * Under the default root each cluster gets `<root>/<owner pid>-<random>`: the owner's pid is in
 * the name, so the mark exists atomically with the directory and a sweep running in another
 * test worker at that very moment can never mistake a directory being set up for a stale one.
 */

/** Per OS user, so one user's sweep never meets another user's directories. */
export function defaultRoot(): string {
  return path.join(tmpdir(), `resilient-pool-${process.getuid?.() ?? 'user'}`);
}

const asRoot = (): boolean => process.getuid?.() === 0;

export interface ClusterBase {
  readonly dir: string;
  /** We created `dir`, so `stop()` removes it, not only the node directories inside it. */
  readonly created: boolean;
}

/** Creates the directory that will hold this cluster's node directories. */
export async function createClusterBase(dataDir: string | undefined): Promise<ClusterBase> {
  if (dataDir === undefined) {
    const root = defaultRoot();
    await mkdir(root, { recursive: true, mode: 0o755 });
    // As above, whatever the umask made of it: the postgres OS user must pass through.
    if (asRoot()) await chmod(root, 0o755);
    await sweepStaleClusterDirs(root);
    const dir = await mkdtemp(path.join(root, `${process.pid}-`));
    // mkdtemp makes it 0700; the postgres OS user we run the servers as must pass through it.
    if (asRoot()) await chmod(dir, 0o711);
    return { dir, created: true };
  }
  const dir = path.resolve(dataDir);
  const existing = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing !== undefined && existing.length > 0) {
    throw new Error(`startLocalCluster: dataDir ${dir} must be empty or not exist yet`);
  }
  await mkdir(dir, { recursive: true });
  if (asRoot()) await chmod(dir, 0o711);
  return { dir, created: existing === undefined };
}

/** SIGKILLs a server still running in `nodeDir` whose owner died without cleaning up. */
function killOrphanServer(nodeDir: string): void {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(nodeDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  // postmaster.pid may be left over from a crash and the pid reused: only a process whose
  // command line names this very directory is ours to kill.
  if (!Number.isInteger(pid) || pid <= 0 || !commandLine(pid)?.includes(nodeDir)) return;
  signalAll([pid, ...descendantPids(pid)], 'SIGKILL');
}

/** Removes cluster directories under `root` whose owning process is gone, and their servers. */
export async function sweepStaleClusterDirs(root: string): Promise<void> {
  const entries = await readdir(root).catch(() => [] as string[]);
  await Promise.all(
    entries.map(async (entry) => {
      const owner = /^(\d+)-/.exec(entry)?.[1];
      if (owner === undefined) return;
      const pid = Number(owner);
      if (pid === process.pid || !isGone(pid)) return;
      const dir = path.join(root, entry);
      const nodes = await readdir(dir).catch(() => [] as string[]);
      for (const node of nodes) killOrphanServer(path.join(dir, node));
      // Best effort: a directory we cannot remove now is retried by the next sweep.
      await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
    }),
  );
}

/** Cold copy of a stopped data directory, owned by the server's OS user and private to it. */
export async function copyDataDir(
  from: string,
  to: string,
  uid: number | undefined,
  gid: number | undefined,
): Promise<void> {
  await cp(from, to, { recursive: true });
  if (uid !== undefined && gid !== undefined) {
    await lchown(to, uid, gid);
    const entries = await readdir(to, { recursive: true });
    await Promise.all(entries.map((rel) => lchown(path.join(to, rel), uid, gid)));
  }
  // PostgreSQL refuses a data directory that group or others can read.
  await chmod(to, 0o700);
}

/** Writes a file the server must be able to read and rewrite (ALTER SYSTEM, promotion). */
export async function writeServerFile(
  file: string,
  content: string,
  uid: number | undefined,
  gid: number | undefined,
): Promise<void> {
  await writeFile(file, content, { mode: 0o600 });
  if (uid !== undefined && gid !== undefined) await chown(file, uid, gid);
}
