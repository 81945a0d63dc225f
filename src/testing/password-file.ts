import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { removeOnExit } from './exit-cleanup.js';
import type { OsUser } from './os-user.js';

/**
 * The superuser password handed to `initdb --pwfile`, in a file only the reader can open: mode
 * 0600 inside a fresh 0700 directory, owned by the OS user initdb runs as. It lives next to the
 * data directory, which that user can reach by construction (the temp directory may not be).
 */

/**
 * Writes `password` into a private file under `parent`, runs `fn` with its path, and removes
 * the file afterwards whether `fn` succeeded or not (and at process exit, should it not return).
 */
export async function withPasswordFile<T>(
  parent: string,
  password: string,
  owner: OsUser | undefined,
  fn: (file: string) => Promise<T>,
): Promise<T> {
  // mkdtemp creates the directory 0700 whatever the umask.
  const dir = await mkdtemp(path.join(parent, '.pwfile-'));
  const untrack = removeOnExit(dir);
  try {
    const file = path.join(dir, 'password');
    await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
    if (owner !== undefined) {
      await chown(file, owner.uid, owner.gid);
      await chown(dir, owner.uid, owner.gid);
    }
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
    untrack();
  }
}
