/**
 * Drizzle over a ResilientPool in an application bundled the way many are shipped:
 * `esbuild --bundle --minify --platform=node --format=esm`. Minification renames every class, and
 * Drizzle's node-postgres driver tells a pool from a client by the class name (it must include
 * "Pool"): under a mangled name it ran transactions through `query()`, so a transaction that
 * threw left its INSERT committed and concurrent transactions were split across connections. The
 * scenarios of drizzle-scenarios.ts run here as a minified bundle, in a child process.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { CONCURRENT, type ScenarioReport } from './drizzle-scenarios.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const handle = useCluster({ replicas: 0 });
let dir: string | undefined;

/** Bundles the scenarios with the ResilientPool from src/, as an application would be. */
async function bundle(): Promise<string> {
  dir = await mkdtemp(path.join(tmpdir(), 'rp-drizzle-bundle-'));
  const outfile = path.join(dir, 'app.mjs');
  await build({
    stdin: {
      contents: [
        `import { ResilientPool } from './src/index.ts';`,
        `import { runDrizzleScenarios } from './test/integration/drizzle-scenarios.ts';`,
        'const report = await runDrizzleScenarios(',
        '  ResilientPool, process.env.PRIMARY_URL, process.env.RUN_ID);',
        'process.stdout.write(JSON.stringify(report));',
      ].join('\n'),
      resolveDir: ROOT,
      sourcefile: 'app.ts',
      loader: 'ts',
    },
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    outfile,
    // CommonJS dependencies (pg, pino) require Node's built-ins: the usual banner for ESM bundles.
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    // pg's optional native binding, required only by pg.native.
    external: ['pg-native'],
    logLevel: 'error',
  });
  return outfile;
}

beforeAll(() => {
  // Nothing to set up beyond the cluster; the bundle is made inside the test, with its timeout.
});

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('Drizzle over a ResilientPool, bundled with esbuild --minify', () => {
  it('keeps transactions atomic and pinned to one connection', async () => {
    const outfile = await bundle();
    const code = await readFile(outfile, 'utf8');
    // The bundle is minified: our own class names are gone from it.
    expect(code).not.toMatch(/class ResilientPool\b/);
    expect(code).not.toContain('PoolEventForwarding');

    const { stdout } = await run(process.execPath, [outfile], {
      env: { ...process.env, PRIMARY_URL: handle.cluster.primary.url, RUN_ID: `min-${Date.now()}` },
      timeout: 60_000,
    });
    const report = JSON.parse(stdout) as ScenarioReport;
    expect(report.className).toBe('ResilientPool');
    expect(report.rollback).toEqual({ rejected: 'abort the transaction', rowsAfter: 0 });
    expect(report.savepoint.committed).toEqual(['outer']);
    expect(report.concurrent).toHaveLength(CONCURRENT);
    for (const tx of report.concurrent) {
      expect(tx.saw, `${tx.tag} sees only its own row`).toEqual([tx.tag]);
      expect(new Set(tx.pids).size, `${tx.tag} runs on one connection`).toBe(1);
    }
    expect(new Set(report.concurrent.map((tx) => tx.pids[0])).size).toBe(CONCURRENT);
    expect(report.committed).toEqual(report.concurrent.map((tx) => tx.tag).sort());
  }, 120_000);
});
