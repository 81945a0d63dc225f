/**
 * `resilient-pool drill` flags. Every problem is reported at once, unknown flags included.
 */
import { isScenarioName, SCENARIOS, type ScenarioName } from '../drill/scenario-names.js';

export interface DrillCliOptions {
  /** undefined: the drill's default (6 s plus 10 s per scenario played). */
  durationMs: number | undefined;
  scenarios: ScenarioName[];
  replicas: number;
  concurrency: number;
  rate: number;
  seed: number | undefined;
  json: boolean;
  report: string | undefined;
  primary: string | undefined;
  replicaUrls: string[];
  /** A Redis URL for the read cache; true: REDIS_URL or the default; false: no cache. */
  redis: string | boolean | undefined;
  help: boolean;
  /** `--list`: print the scenarios and exit. */
  list: boolean;
}

export const DRILL_USAGE = `Usage: resilient-pool drill [options]

Starts a PostgreSQL primary with streaming replicas (embedded, nothing to install), runs a mixed
read/write workload through a ResilientPool and plays real faults. Exits non-zero when an
invariant fails (a lost or doubled write, a leaked client, an untyped error).

Options:
  --duration <s>        total length in seconds (default 6 + 10 per scenario played)
  --scenarios <a,b,c>   the scenarios to play, comma-separated, or all (default all)
  --scenario <name>     one scenario, or all; repeatable
  --list                print the scenarios, one line each, and exit
  --replicas <n>        streaming replicas to start (default 2)
  --concurrency <n>     concurrent callers (default 8)
  --rate <n>            calls per second across callers (default 300)
  --seed <n>            seed of the fault schedule, to replay a drill (default random, printed)
  --json                print the summary as JSON on stdout (status lines go to stderr)
  --report <file>       write a self-contained HTML report with a timeline chart
  --primary <url>       drill an external primary instead (loopback only; network faults only)
  --replica <url>       an external replica; repeatable
  --redis [url]         put a Redis read cache in front (loopback; default REDIS_URL or
                        redis://127.0.0.1:6379) and play redis-loss and redis-hang; without
                        the flag, used when REDIS_URL (else 127.0.0.1:6379) answers
  --no-redis            no cache, even with REDIS_URL set
  -h, --help            this text
`;

/** The drill's flags, and whether each takes a value (for the did-you-mean of a misspelt one). */
const FLAGS: ReadonlyArray<{ flag: string; takesValue: boolean }> = [
  { flag: '--duration', takesValue: true },
  { flag: '--scenario', takesValue: true },
  { flag: '--scenarios', takesValue: true },
  { flag: '--list', takesValue: false },
  { flag: '--replicas', takesValue: true },
  { flag: '--concurrency', takesValue: true },
  { flag: '--rate', takesValue: true },
  { flag: '--seed', takesValue: true },
  { flag: '--json', takesValue: false },
  { flag: '--report', takesValue: true },
  { flag: '--primary', takesValue: true },
  { flag: '--replica', takesValue: true },
  { flag: '--redis', takesValue: false },
  { flag: '--no-redis', takesValue: false },
  { flag: '--help', takesValue: false },
];

/** Levenshtein distance, for short strings. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The known flag an unknown one most likely meant: within 2 edits, or a prefix of it. */
export function closestFlag(unknown: string): { flag: string; takesValue: boolean } | undefined {
  const wanted = `--${unknown.replace(/^-+/, '')}`;
  let best: { flag: string; takesValue: boolean } | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of FLAGS) {
    const d = distance(wanted, candidate.flag);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best !== undefined && bestDistance <= Math.min(2, Math.floor(wanted.length / 3))) {
    return best;
  }
  const prefixed = wanted.length >= 4 ? FLAGS.filter((c) => c.flag.startsWith(wanted)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

function integer(flag: string, raw: string | undefined, min: number, problems: string[]): number {
  const value = Number(raw);
  if (raw === undefined || !Number.isInteger(value) || value < min) {
    problems.push(
      `${flag} needs an integer >= ${min}, got ${raw === undefined ? 'nothing' : `'${raw}'`}`,
    );
    return min;
  }
  return value;
}

/** The scenario an unknown name most likely meant: within 3 edits, or the only one it starts. */
export function closestScenario(unknown: string): ScenarioName | undefined {
  let best: ScenarioName | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of SCENARIOS) {
    const d = distance(unknown, name);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  if (best !== undefined && bestDistance <= Math.min(3, Math.floor(unknown.length / 3))) {
    return best;
  }
  const prefixed = unknown.length >= 3 ? SCENARIOS.filter((n) => n.startsWith(unknown)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** `--scenarios a,b,c`: the names, each checked; 'all' stands for every scenario. */
function scenarioList(raw: string | undefined, problems: string[]): ScenarioName[] {
  if (raw === undefined || raw.startsWith('--') || raw.trim() === '') {
    problems.push('--scenarios needs a comma-separated list of scenarios (--list shows them)');
    return [];
  }
  const names: ScenarioName[] = [];
  for (const part of raw.split(',')) {
    const name = part.trim();
    if (name === '') continue;
    if (name === 'all') names.push(...SCENARIOS);
    else if (isScenarioName(name)) names.push(name);
    else {
      const suggestion = closestScenario(name);
      problems.push(
        `--scenarios: unknown scenario '${name}'${suggestion ? ` (did you mean ${suggestion}?)` : ''}; --list shows them`,
      );
    }
  }
  return names;
}

export function parseDrillArgs(argv: readonly string[]): DrillCliOptions {
  const options: DrillCliOptions = {
    durationMs: undefined,
    scenarios: [],
    replicas: 2,
    concurrency: 8,
    rate: 300,
    seed: undefined,
    json: false,
    report: undefined,
    primary: undefined,
    replicaUrls: [],
    redis: undefined,
    help: false,
    list: false,
  };
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--duration':
        options.durationMs = integer('--duration', value(), 5, problems) * 1000;
        break;
      case '--scenario': {
        const name = value();
        if (name === 'all') options.scenarios.push(...SCENARIOS);
        else if (name !== undefined && isScenarioName(name)) options.scenarios.push(name);
        else {
          const suggestion = name === undefined ? undefined : closestScenario(name);
          problems.push(
            `--scenario must be one of ${SCENARIOS.join(', ')} or all, got '${name ?? ''}'${suggestion ? ` (did you mean ${suggestion}?)` : ''}`,
          );
        }
        break;
      }
      case '--scenarios':
        options.scenarios.push(...scenarioList(value(), problems));
        break;
      case '--list':
        options.list = true;
        break;
      case '--replicas':
        options.replicas = integer('--replicas', value(), 0, problems);
        break;
      case '--concurrency':
        options.concurrency = integer('--concurrency', value(), 1, problems);
        break;
      case '--rate':
        options.rate = integer('--rate', value(), 1, problems);
        break;
      case '--seed':
        options.seed = integer('--seed', value(), 0, problems);
        break;
      case '--json':
        options.json = true;
        break;
      case '--report': {
        const file = value();
        if (file === undefined || file.startsWith('--'))
          problems.push('--report needs a file name');
        else options.report = file;
        break;
      }
      case '--primary':
        options.primary = value();
        if (options.primary === undefined) problems.push('--primary needs a postgres:// URL');
        break;
      case '--replica': {
        const url = value();
        if (url === undefined) problems.push('--replica needs a postgres:// URL');
        else options.replicaUrls.push(url);
        break;
      }
      case '--redis': {
        // The URL is optional: `--redis` alone means REDIS_URL or redis://127.0.0.1:6379.
        const next = inline ?? argv[i + 1];
        if (next !== undefined && /^rediss?:\/\//.test(next)) {
          options.redis = next;
          if (inline === undefined) i++;
        } else {
          options.redis = true;
        }
        break;
      }
      case '--no-redis':
        options.redis = false;
        break;
      case '-h':
      case '--help':
        options.help = true;
        break;
      default:
        if (flag.startsWith('-')) {
          const suggestion = closestFlag(flag);
          problems.push(
            `unknown option '${flag}'${suggestion ? ` (did you mean ${suggestion.flag}?)` : ''}`,
          );
          // `--durtion 5`: the value belongs to the misspelt flag, so it is not reported as well.
          const next = argv[i + 1];
          const takesValue = suggestion?.takesValue ?? true;
          if (inline === undefined && takesValue && next !== undefined && !next.startsWith('-'))
            i++;
        } else {
          problems.push(`unexpected argument '${arg}'`);
        }
    }
  }
  if (options.replicaUrls.length > 0 && options.primary === undefined) {
    problems.push('--replica needs --primary');
  }
  if (options.scenarios.length === 0) options.scenarios = [...SCENARIOS];
  options.scenarios = [...new Set(options.scenarios)];
  if (problems.length > 0) {
    throw new TypeError(`resilient-pool drill:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return options;
}
