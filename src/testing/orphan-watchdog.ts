/**
 * A tiny detached process that outlives a crash of the process that started a cluster: if that
 * process dies without stopping the cluster (SIGKILL, an OOM kill, a test runner killing its
 * worker), the watchdog SIGKILLs every postmaster of the cluster and removes its files. Without
 * it, servers would run on until the next `startLocalCluster` swept them. The 'exit' hook covers
 * the orderly cases; this covers the ones where no JavaScript runs any more.
 */
import { spawn } from 'node:child_process';

/** Runs in the watchdog: argv = [parentPid, intervalMs, ownedPath..., '--', dataDir...]. */
const WATCHDOG_SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
const args = process.argv.slice(1);
const parent = Number(args[0]);
const interval = Number(args[1]);
const split = args.indexOf('--');
const owned = args.slice(2, split);
const dataDirs = args.slice(split + 1);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const timer = setInterval(() => {
  if (alive(parent)) return;
  clearInterval(timer);
  for (const dir of dataDirs) {
    try {
      const pid = Number(fs.readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGKILL');
    } catch {}
  }
  setTimeout(() => {
    for (const p of owned) { try { fs.rmSync(p, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }); } catch {} }
    process.exit(0);
  }, 1000);
}, interval);
`;

export interface Watchdog {
  /** Ends the watchdog (the cluster stopped normally). */
  stop(): void;
}

/**
 * Starts the watchdog for a cluster whose node data directories are `dataDirs` and whose files
 * live under `ownedPaths`. Resolves once it runs; rejects if it cannot be spawned, since a
 * cluster without it could outlive a crash of this process.
 * @param intervalMs how often it checks the parent @default 500
 */
export function startOrphanWatchdog(
  ownedPaths: readonly string[],
  dataDirs: readonly string[],
  intervalMs = 500,
): Promise<Watchdog> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      WATCHDOG_SCRIPT,
      String(process.pid),
      String(intervalMs),
      ...ownedPaths,
      '--',
      ...dataDirs,
    ],
    // Its own process group, so a signal to ours (Ctrl-C) does not take it down before it acts.
    { detached: true, stdio: 'ignore' },
  );
  child.unref();
  const watchdog: Watchdog = {
    stop: () => {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    },
  };
  return new Promise((resolve, reject) => {
    // Without an 'error' listener a failed spawn would be thrown out of the process.
    child.once('error', (err) =>
      reject(new Error(`startLocalCluster: could not start the orphan watchdog: ${err.message}`)),
    );
    child.once('spawn', () => resolve(watchdog));
  });
}
