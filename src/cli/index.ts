#!/usr/bin/env node
/**
 * The `resilient-pool` command. One subcommand today: `drill`. This file reads the flags, prints
 * and writes what the drill engine (src/drill/) returns; it holds no drill logic of its own.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { redisAnswers, redisUrlFromEnv } from '../drill/redis-probe.js';
import { renderHtmlReport } from '../drill/report/html-report.js';
import { runDrill } from '../drill/run-drill.js';
import { scenarioList } from '../drill/scenario-names.js';
import { faultDetails, invariantLines, summaryTable } from '../drill/summary.js';
import { DRILL_USAGE, parseDrillArgs } from './drill-args.js';

const USAGE = `Usage: resilient-pool <command>

Commands:
  drill     play real faults against a replicated PostgreSQL under load (resilient-pool drill --help)

Options:
  -v, --version   print the version
  -h, --help      this text
`;

/**
 * The package's version, from its package.json: two levels up from this file both as built
 * (dist/cli/index.js) and as source (src/cli/index.ts, run by tsx).
 */
async function packageVersion(): Promise<string> {
  const manifest = JSON.parse(
    await readFile(new URL('../../package.json', import.meta.url), 'utf8'),
  ) as { name?: unknown; version?: unknown };
  if (manifest.name !== 'resilient-pool' || typeof manifest.version !== 'string') {
    throw new Error('resilient-pool: cannot find its own package.json');
  }
  return manifest.version;
}

/** The install command to suggest for a missing optional peer dependency. */
const INSTALL_IOREDIS = 'npm install ioredis (or: pnpm add ioredis, yarn add ioredis)';

/** Whether ioredis, an optional peer dependency, can be loaded from where resilient-pool is. */
async function ioredisInstalled(): Promise<boolean> {
  try {
    await import('ioredis');
    return true;
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    const message = err instanceof Error ? err.message : '';
    // Only its absence is answered here; an ioredis that fails to load reports its own error.
    if (
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
      /['"]ioredis['"]/.test(message)
    ) {
      return false;
    }
    throw err;
  }
}

async function drill(argv: readonly string[]): Promise<number> {
  const options = parseDrillArgs(argv);
  if (options.help) {
    process.stdout.write(DRILL_USAGE);
    return 0;
  }
  if (options.list) {
    process.stdout.write(`${scenarioList()}\n`);
    return 0;
  }
  // With --json, stdout carries only the JSON; progress goes to stderr.
  const out = options.json ? process.stderr : process.stdout;
  const print = (line: string) => out.write(`${line}\n`);
  const external = options.primary
    ? { primary: options.primary, replicas: options.replicaUrls }
    : undefined;
  print(
    external
      ? `drilling external servers through ChaosProxy (${options.replicaUrls.length} replicas)`
      : `starting an embedded primary with ${options.replicas} streaming replicas`,
  );
  const redisUrl = await chooseRedis(options.redis, print);
  const report = await runDrill({
    ...(options.durationMs === undefined ? {} : { durationMs: options.durationMs }),
    scenarios: options.scenarios,
    replicas: options.replicas,
    concurrency: options.concurrency,
    rate: options.rate,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    ...(external ? { external } : {}),
    ...(redisUrl ? { redisUrl } : {}),
    onStatus: print,
    onEvent: (line) => print(`>> ${line}`),
  });
  print('');
  print(
    `seed ${report.seed}; ${report.totals.ok} calls ok, ${report.totals.errors} errors surfaced, ${report.totals.retries} retries`,
  );
  print(summaryTable(report.summary));
  print('');
  print(faultDetails(report.summary));
  print('');
  print(invariantLines(report.invariants));
  if (options.report) {
    await writeFile(options.report, renderHtmlReport(report));
    print(`report: ${options.report}`);
  }
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return report.invariants.every((i) => i.ok) ? 0 : 1;
}

/**
 * The Redis for the drill's cache: the flag's URL (it must answer), else REDIS_URL or
 * redis://127.0.0.1:6379 when it answers a PING (the tests' default address), else none, said so.
 */
async function chooseRedis(
  flag: string | boolean | undefined,
  print: (line: string) => void,
): Promise<string | undefined> {
  if (flag === false) return undefined;
  const url = typeof flag === 'string' ? flag : redisUrlFromEnv();
  if (!(await ioredisInstalled())) {
    if (flag !== undefined) {
      throw new Error(
        `--redis: the drill's read cache needs the ioredis package, which is not installed; install it next to resilient-pool: ${INSTALL_IOREDIS}`,
      );
    }
    print(
      `ioredis is not installed: drilling without the Redis cache (to use it: ${INSTALL_IOREDIS})`,
    );
    return undefined;
  }
  if (await redisAnswers(url)) {
    print(`Redis at ${new URL(url).host} answers: half the reads go through the cache`);
    return url;
  }
  if (flag !== undefined) throw new Error(`--redis: nothing answers at ${new URL(url).host}`);
  print(
    `no Redis answers at ${new URL(url).host} (REDIS_URL): drilling without the cache; redis-loss and redis-hang are skipped`,
  );
  return undefined;
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'drill') return drill(rest);
  if (command === '-v' || command === '--version' || command === 'version') {
    process.stdout.write(`${await packageVersion()}\n`);
    return 0;
  }
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 1 : 0;
  }
  process.stderr.write(`resilient-pool: unknown command '${command}'\n\n${USAGE}`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
