/**
 * The `resilient-pool drill` command end to end: a short drill, its exit code, the JSON summary
 * and the HTML report; and bad flags.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDrillArgs } from '../../src/cli/drill-args.js';
import type { DrillReport } from '../../src/drill/report-model.js';
import { SCENARIO_INFO, SCENARIOS } from '../../src/drill/scenario-names.js';
import { EXTERNAL_DATABASE, NEEDS_LOCAL_CLUSTER } from '../support/cluster.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

function cli(
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = {},
  nodeFlags: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', ...nodeFlags, path.join(ROOT, 'src/cli/index.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0', ...env } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`drill did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('resilient-pool drill', () => {
  it.skipIf(EXTERNAL_DATABASE)(
    `runs a short drill, prints status and a summary, writes JSON and an HTML report (${NEEDS_LOCAL_CLUSTER})`,
    async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'rp-cli-'));
      try {
        const reportFile = path.join(dir, 'report.html');
        const { code, stdout, stderr } = await cli(
          [
            'drill',
            '--duration',
            '8',
            '--scenario',
            'replica-kill',
            '--seed',
            '3',
            '--rate',
            '100',
            '--json',
            '--report',
            reportFile,
          ],
          90_000,
        );
        expect(code, stderr).toBe(0);
        // --json: stdout is only the JSON; progress went to stderr.
        const report = JSON.parse(stdout) as DrillReport;
        expect(report.seed).toBe(3);
        expect(report.config.scenarios).toEqual(['replica-kill']);
        expect(report.invariants.every((i) => i.ok)).toBe(true);
        expect(stderr).toMatch(/\[\s*\d+s\] ops\/s/);
        expect(stderr).toMatch(/fault: SIGKILL replica-\d/);
        expect(stderr).toMatch(/PASS {2}acknowledged writes present exactly once/);
        const html = await readFile(reportFile, 'utf8');
        expect(html).toContain('id="drill-data"');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );

  it('exits 2 with a one-line reason, and no stack, when the cluster cannot start', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'rp-cli-'));
    try {
      const file = path.join(dir, 'not-a-directory');
      await writeFile(file, '');
      // The cluster's directories go under TMPDIR, here below a plain file; tsx's own cache
      // would go there too, so it is turned off.
      const { code, stderr } = await cli(['drill', '--duration', '5', '--replicas', '0'], 30_000, {
        TMPDIR: path.join(file, 'tmp'),
        TSX_DISABLE_CACHE: '1',
      });
      expect(code, stderr).toBe(2);
      const last = stderr.trimEnd().split('\n').at(-1) ?? '';
      expect(last).toMatch(/^startLocalCluster: .*not-a-directory/);
      expect(stderr).not.toMatch(/^\s+at /m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lists every bad flag and exits 2', async () => {
    const { code, stderr } = await cli(
      ['drill', '--duration', 'x', '--scenario', 'meteor', '--frobnicate'],
      30_000,
    );
    expect(code).toBe(2);
    expect(stderr).toContain('--duration needs an integer');
    expect(stderr).toContain('--scenario must be one of');
    expect(stderr).toContain("unknown option '--frobnicate'");
  });

  it('names a misspelt flag, not its value, with the flag it most likely meant', async () => {
    const { code, stderr } = await cli(['drill', '--durtion', '5', '--jsn'], 30_000);
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option '--durtion' (did you mean --duration?)");
    expect(stderr).toContain("unknown option '--jsn' (did you mean --json?)");
    expect(stderr).not.toContain("'5'");
  });

  it('prints its version for --version and -v, from package.json', async () => {
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v']) {
      const { code, stdout } = await cli([flag], 30_000);
      expect(code).toBe(0);
      expect(stdout.trim()).toBe(version);
    }
  });

  it('says what to install when --redis is given and ioredis is not installed', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'rp-cli-'));
    try {
      // A resolve hook that makes ioredis absent, as in a project that did not install it.
      await writeFile(
        path.join(dir, 'hooks.mjs'),
        `export async function resolve(specifier, context, next) {
  if (specifier === 'ioredis' || specifier.startsWith('ioredis/')) {
    const err = new Error("Cannot find package 'ioredis' imported from " + context.parentURL);
    err.code = 'ERR_MODULE_NOT_FOUND';
    throw err;
  }
  return next(specifier, context);
}
`,
      );
      await writeFile(
        path.join(dir, 'no-ioredis.mjs'),
        `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`,
      );
      const { code, stderr } = await cli(['drill', '--redis', '--duration', '5'], 30_000, {}, [
        '--import',
        pathToFileURL(path.join(dir, 'no-ioredis.mjs')).href,
      ]);
      expect(code, stderr).toBe(2);
      expect(stderr).toContain('needs the ioredis package');
      expect(stderr).toContain('npm install ioredis');
      expect(stderr).not.toContain('Cannot find package');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints every scenario with its one line for --list, and exits 0', async () => {
    const { code, stdout } = await cli(['drill', '--list'], 30_000);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual([...SCENARIOS]);
    for (const [i, name] of SCENARIOS.entries()) {
      expect(lines[i]).toContain(SCENARIO_INFO[name].summary);
    }
  });

  it('prints usage for --help', async () => {
    const { code, stdout } = await cli(['drill', '--help'], 30_000);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: resilient-pool drill');
  });
});

describe('parseDrillArgs', () => {
  const problems = (argv: string[]): string => {
    try {
      parseDrillArgs(argv);
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };

  it('reports a misspelt flag once, with its value, in both spellings', () => {
    for (const argv of [['--durtion', '5'], ['--durtion=5']]) {
      const message = problems(argv);
      expect(message).toContain("unknown option '--durtion' (did you mean --duration?)");
      expect(message).not.toMatch(/'5'|'--durtion=5'/);
    }
  });

  it('suggests only a near flag, and keeps reading after a misspelt one', () => {
    expect(problems(['--frobnicate'])).toMatch(/unknown option '--frobnicate'$/m);
    expect(problems(['--replcas', '1', '--seed', 'x'])).toContain('did you mean --replicas?');
    expect(problems(['--replcas', '1', '--seed', 'x'])).toContain(
      "--seed needs an integer >= 0, got 'x'",
    );
    // A misspelt switch leaves the next word alone, so a stray word is still reported.
    expect(problems(['--jsno', 'stray'])).toContain("unexpected argument 'stray'");
    expect(problems(['--no-rediss'])).toContain('did you mean --no-redis?');
  });

  it('reports a word that is not a flag', () => {
    expect(problems(['5'])).toContain("unexpected argument '5'");
  });

  it('reads --scenarios as a comma-separated list, in order, with --scenario and all', () => {
    expect(parseDrillArgs(['--scenarios', 'replica-lag,overload']).scenarios).toEqual([
      'replica-lag',
      'overload',
    ]);
    expect(parseDrillArgs(['--scenarios=overload, redis-hang,']).scenarios).toEqual([
      'overload',
      'redis-hang',
    ]);
    expect(
      parseDrillArgs(['--scenario', 'replica-kill', '--scenarios', 'overload,replica-kill'])
        .scenarios,
    ).toEqual(['replica-kill', 'overload']);
    expect(parseDrillArgs(['--scenarios', 'all']).scenarios).toEqual([...SCENARIOS]);
    expect(parseDrillArgs([]).scenarios).toEqual([...SCENARIOS]);
  });

  it('names every unknown scenario, with the one it most likely meant', () => {
    const message = problems([
      '--scenarios',
      'replica-lagg,meteor,overload',
      '--scenario',
      'swichover',
    ]);
    expect(message).toContain(
      "--scenarios: unknown scenario 'replica-lagg' (did you mean replica-lag?)",
    );
    expect(message).toMatch(/unknown scenario 'meteor'; --list shows them/);
    expect(message).toContain("got 'swichover'");
    expect(message).not.toContain("'overload'");
    expect(problems(['--scenarios'])).toContain('--scenarios needs a comma-separated list');
    expect(problems(['--scenarios', '--json'])).toContain(
      '--scenarios needs a comma-separated list',
    );
    expect(problems(['--scenarioss', 'overload'])).toContain('did you mean --scenarios?');
  });

  it('takes --list, and leaves the duration to the drill unless given', () => {
    expect(parseDrillArgs(['--list']).list).toBe(true);
    expect(parseDrillArgs([]).list).toBe(false);
    expect(parseDrillArgs([]).durationMs).toBeUndefined();
    expect(parseDrillArgs(['--duration', '60']).durationMs).toBe(60_000);
  });
});
