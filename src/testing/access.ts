import type { Stats } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { OsUser } from './os-user.js';

/**
 * Whether another OS user (the postgres user the servers run as when we are root) can reach a
 * path, decided from mode bits the way the kernel does: the owner class if the user owns the
 * file, else the group class if its group matches, else the others class. Asking the kernel
 * instead (access(2)) would answer for root, who may do anything.
 */

/** Permission bits, as in a mode's rwx triple. */
export const READ = 4;
export const WRITE = 2;
export const EXEC = 1;

/** The parts of `fs.Stats` the decision needs, so tests can pass plain objects. */
export type ModeOwner = Pick<Stats, 'mode' | 'uid' | 'gid'>;

/** Who asks: only uid and primary gid count (see {@link OsUser.gid}). */
export type Accessor = Pick<OsUser, 'uid' | 'gid'>;

/** True when `who` has every bit of `want` (READ | WRITE | EXEC) on a file with `stats`. */
export function permits(stats: ModeOwner, who: Accessor, want: number): boolean {
  const shift = stats.uid === who.uid ? 6 : stats.gid === who.gid ? 3 : 0;
  return ((stats.mode >> shift) & want) === want;
}

/** `"/root (mode 700, owner uid 0)"`: enough to see at a glance why it is closed. */
export function describeMode(file: string, stats: ModeOwner): string {
  return `${file} (mode ${(stats.mode & 0o777).toString(8)}, owner uid ${stats.uid})`;
}

/**
 * The first directory on the way to `target` that `who` cannot pass through (no search
 * permission), described with its mode and owner; undefined when every one lets it pass.
 * Symbolic links are resolved first: what counts is the way to the real file.
 */
export async function blockedAncestor(target: string, who: Accessor): Promise<string | undefined> {
  const real = await realpath(target).catch(() => path.resolve(target));
  const dirs: string[] = [];
  for (let d = path.dirname(real); ; d = path.dirname(d)) {
    dirs.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const dir of dirs) {
    const stats = await stat(dir).catch(() => undefined);
    // A missing directory is another problem, reported by whoever tries to use it.
    if (stats !== undefined && !permits(stats, who, EXEC)) return describeMode(dir, stats);
  }
  return undefined;
}

/** What `who` needs on one entry of a tree it must run from: list and enter dirs, read files. */
function needed(stats: Stats): number {
  if (stats.isDirectory()) return READ | EXEC;
  // Programs and shared libraries carry an execute bit; data files are only read.
  return (stats.mode & 0o111) === 0 ? READ : READ | EXEC;
}

/**
 * The first entry of the tree under `root` (itself included) that `who` cannot use, described;
 * undefined when it can use all of it. Symbolic links are not followed: their targets are
 * entries of the same tree.
 */
export async function unusableEntry(root: string, who: Accessor): Promise<string | undefined> {
  const rootStats = await lstat(root);
  if (!permits(rootStats, who, needed(rootStats))) return describeMode(root, rootStats);
  const files = (await readdir(root, { recursive: true }))
    .sort()
    .map((rel) => path.join(root, rel));
  // All at once: a package holds about a thousand entries, and one by one takes 100 ms.
  const problems = await Promise.all(
    files.map(async (file) => {
      const stats = await lstat(file);
      if (stats.isSymbolicLink() || permits(stats, who, needed(stats))) return undefined;
      return describeMode(file, stats);
    }),
  );
  return problems.find((p) => p !== undefined);
}
