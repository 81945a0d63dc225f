import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Process-table helpers for the local cluster. Everything here is synchronous because `pause()`,
 * `resume()` and the process 'exit' hook are synchronous; each call reads at most a few hundred
 * small /proc files.
 */

/** State letter and parent pid from /proc/<pid>/stat, or undefined when /proc has no entry. */
function readStat(pid: number): { state: string; ppid: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name sits in parentheses and may itself contain spaces or parentheses, so the
  // fields are counted from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', ppid: Number(fields[1]) };
}

const hasProcFs = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

/**
 * True when `pid` no longer runs. A zombie counts as gone: it holds no files or shared memory,
 * and orphaned backends may stay zombies for a while when PID 1 of a container is slow to reap.
 */
export function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  if (!hasProcFs) return false;
  const state = readStat(pid)?.state;
  return state === undefined || state === 'Z' || state === 'X';
}

/** True when `pid` is stopped by a signal (SIGSTOP); always true where /proc is missing. */
export function isStopped(pid: number): boolean {
  if (!hasProcFs) return true;
  const state = readStat(pid)?.state;
  return state === undefined || state === 'T' || state === 't';
}

function directChildren(pid: number): number[] {
  if (hasProcFs) {
    // /proc/<pid>/task/<tid>/children is the cheap path, but it needs CONFIG_PROC_CHILDREN,
    // which some kernels (and sandboxes) lack; scanning every /proc/<n>/stat always works.
    try {
      const tasks = readdirSync(`/proc/${pid}/task`);
      const out: number[] = [];
      for (const tid of tasks) {
        const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
        if (text !== '') out.push(...text.split(/\s+/).map(Number));
      }
      return out;
    } catch {
      // fall through to the scan
    }
    const out: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      if (readStat(Number(entry))?.ppid === pid) out.push(Number(entry));
    }
    return out;
  }
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    // pgrep exits 1 when nothing matches.
    return [];
  }
}

/** Every descendant of `pid` (children, their children, ...), parents before children. */
export function descendantPids(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const child of directChildren(next)) {
      if (!out.includes(child)) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}

/** Sends `signal` to each pid, ignoring those that are already gone. */
export function signalAll(pids: Iterable<number>, signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

/** The command line of `pid` (arguments joined by spaces), or undefined where unknown. */
export function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
}

/** Blocks the thread for `ms` without spinning; only for the synchronous paths above. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
