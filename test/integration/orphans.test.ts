/**
 * A test process that dies without stopping its cluster (SIGKILL: no exit hook runs) leaves no
 * server running and no files behind: the cluster's watchdog cleans up.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXTERNAL_DATABASE, NEEDS_LOCAL_CLUSTER } from '../support/cluster.js';
import { until } from '../support/wait.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Gone, or a zombie waiting to be reaped (it holds no port, files or memory). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? false;
  } catch {
    return true;
  }
}

describe.skipIf(EXTERNAL_DATABASE)(`a crashed test process (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('leaves no postgres running and removes the data directories', async () => {
    const script = `
        const { startLocalCluster } = await import(${JSON.stringify(path.join(ROOT, 'src/testing/index.ts'))});
        const cluster = await startLocalCluster({ replicas: 1 });
        console.log(JSON.stringify({ pids: cluster.nodes.map((n) => n.pid), dataDir: process.env.RP_DIR }));
        setInterval(() => {}, 1000);
      `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let errors = '';
    child.stderr.on('data', (d: Buffer) => (errors += d));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(out.slice(0, nl));
      });
      // 'close', not 'exit': by then its stderr, which says why it could not start, is read.
      child.on('close', (code) => reject(new Error(`child exited early with ${code}: ${errors}`)));
      setTimeout(() => reject(new Error('cluster did not start in 60 s')), 60_000);
    });
    const { pids } = JSON.parse(line) as { pids: number[] };
    expect(pids.every((p) => Number.isInteger(p) && !isGone(p))).toBe(true);
    const dataDirs = pids.map((pid) => {
      try {
        return path.dirname(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[2] ?? '');
      } catch {
        return '';
      }
    });
    child.kill('SIGKILL');
    await until('every postgres of the dead process to be gone', () => pids.every(isGone), {
      timeoutMs: 15_000,
    });
    await until(
      'its files to be removed',
      () => dataDirs.every((d) => d === '' || !existsSync(d)),
      {
        timeoutMs: 15_000,
      },
    );
  }, 90_000);
});
