/** Options of `startLocalCluster()`; validated all at once by `resolveOptions()`. */
export interface LocalClusterOptions {
  /**
   * Streaming replicas to start next to the primary, named `replica-1`, `replica-2`, ...
   * @default 2
   */
  replicas?: number;
  /**
   * Directory to hold the node data directories (`primary`, `replica-1`, ...); it must be empty
   * or not exist yet. `stop()` removes what was created in it, and the directory itself when
   * `startLocalCluster` created it.
   * @default a fresh directory under `os.tmpdir()`; ones left behind by a process that died are
   * removed by the next `startLocalCluster`
   */
  dataDir?: string;
  /**
   * Extra postgresql.conf settings for every node, applied after the cluster's own (which they
   * may override). Strings are quoted for you; numbers are written bare.
   * @default {}
   * @example { max_connections: 200, log_min_duration_statement: '0' }
   */
  postgresConf?: Record<string, string | number>;
  /**
   * Server output: `true` writes it to stderr, a function receives each line. Every line is
   * prefixed with the node name, e.g. `[replica-1] LOG:  started streaming WAL ...`. The last
   * lines are kept either way and quoted when a node fails to start.
   * @default false
   */
  log?: boolean | ((line: string) => void);
}

const MAX_REPLICAS = 16;
const OPTION_KEYS: ReadonlySet<string> = new Set(['replicas', 'dataDir', 'postgresConf', 'log']);

export interface ResolvedOptions {
  readonly replicas: number;
  readonly dataDir: string | undefined;
  readonly postgresConf: Readonly<Record<string, string | number>>;
  readonly log: ((line: string) => void) | undefined;
}

/** Checks every option and reports all problems at once. */
export function resolveOptions(options: LocalClusterOptions): ResolvedOptions {
  const problems: string[] = [];
  if (typeof options !== 'object' || options === null) {
    problems.push('options must be an object');
    options = {};
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) problems.push(`unknown option \`${key}\``);
  }
  const { replicas = 2, dataDir, postgresConf = {}, log = false } = options;
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) {
    problems.push(`\`replicas\` must be an integer from 0 to ${MAX_REPLICAS}, got ${replicas}`);
  }
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir === '')) {
    problems.push('`dataDir` must be a non-empty string');
  }
  if (typeof postgresConf !== 'object' || postgresConf === null) {
    problems.push('`postgresConf` must be an object of setting names to values');
  } else {
    for (const [key, value] of Object.entries(postgresConf)) {
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key)) {
        problems.push(`\`postgresConf\` key \`${key}\` is not a setting name`);
      }
      const isNumber = typeof value === 'number' && Number.isFinite(value);
      // A line break would end the setting early and let the rest be read as another one.
      const isString = typeof value === 'string' && !/[\r\n]/.test(value);
      if (!isNumber && !isString) {
        problems.push(
          `\`postgresConf.${key}\` must be a finite number or a single-line string, got ${String(value)}`,
        );
      }
    }
  }
  if (typeof log !== 'boolean' && typeof log !== 'function') {
    problems.push('`log` must be a boolean or a function');
  }
  if (problems.length > 0) {
    const error = new TypeError(`startLocalCluster: invalid options:\n- ${problems.join('\n- ')}`);
    throw Object.assign(error, { code: 'E_CONFIG' });
  }
  const sink =
    log === true
      ? (line: string) => process.stderr.write(`${line}\n`)
      : typeof log === 'function'
        ? log
        : undefined;
  return { replicas, dataDir, postgresConf, log: sink };
}
