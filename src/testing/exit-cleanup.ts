import { rmSync } from 'node:fs';

/**
 * Last-resort cleanup when the Node process exits with clusters still running (a test runner
 * that tears a worker down, an uncaught exception, a forgotten `cluster.stop()`). PostgreSQL
 * would otherwise outlive us and keep its port and data directory. Only synchronous work is
 * possible in 'exit', so processes get SIGKILL first and their directories are removed after.
 *
 * SIGINT, SIGTERM and SIGHUP end Node without an 'exit' event when nothing listens for them, so
 * the cleanup also runs on those, after which the signal is raised again to end the process as
 * it would have ended. When the program has its own listener for the signal, the decision to
 * exit is its own and the 'exit' hook covers it.
 */

const killers = new Set<() => void>();
const dirs = new Set<string>();
let installed = false;

function runCleanup(): void {
  for (const kill of killers) {
    try {
      kill();
    } catch {
      // One process that cannot be signalled must not stop the others from being killed.
    }
  }
  for (const dir of dirs) {
    try {
      // A backend that is still dying may create a file while we walk; retries cover that, and
      // anything left behind is removed by the next startLocalCluster's stale-directory sweep.
      rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 20 });
    } catch {
      // best effort, see above
    }
  }
}

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  runCleanup();
  for (const s of SIGNALS) process.off(s, onSignal);
  // No listener is left, so the default action applies: the process ends by this signal.
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', runCleanup);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

/** Registers a synchronous SIGKILL for a running process; call the result once it has exited. */
export function killOnExit(kill: () => void): () => void {
  install();
  killers.add(kill);
  return () => killers.delete(kill);
}

/** Registers a directory to remove at exit; call the result once it has been removed. */
export function removeOnExit(dir: string): () => void {
  install();
  dirs.add(dir);
  return () => dirs.delete(dir);
}
