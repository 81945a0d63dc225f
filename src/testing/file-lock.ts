import { randomBytes } from 'node:crypto';
import { link, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { isGone } from './process-tree.js';

/**
 * A lock file between processes of one machine (parallel test workers), holding its owner's pid.
 * It is created with link(2), which fails atomically when the name exists, from a file already
 * holding the pid, so no other process ever sees a lock without an owner. A lock whose owner is
 * gone (a worker SIGKILLed while it held it) is broken by the next process that wants it.
 */

const POLL_MS = 50;

async function ownerOf(lockFile: string): Promise<number | undefined> {
  const text = await readFile(lockFile, 'utf8').catch(() => undefined);
  const pid = Number(text);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Tries once; true when we now hold the lock. */
async function tryAcquire(lockFile: string): Promise<boolean> {
  const draft = `${lockFile}.${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(draft, String(process.pid), { mode: 0o644 });
  try {
    await link(draft, lockFile);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(draft).catch(() => {});
  }
}

/**
 * Runs `fn` while holding `lockFile`, waiting up to `timeoutMs` for another holder; rejects
 * when the wait times out. `fn` should be short: others poll meanwhile.
 */
export async function withFileLock<T>(
  lockFile: string,
  fn: () => Promise<T>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (!(await tryAcquire(lockFile))) {
    const owner = await ownerOf(lockFile);
    if (owner !== undefined && owner !== process.pid && isGone(owner)) {
      await rm(lockFile, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${lockFile}, held by pid ${owner ?? '?'}`,
      );
    }
    await delay(POLL_MS);
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}
