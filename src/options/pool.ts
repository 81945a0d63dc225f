/**
 * Validation of ResilientPool's options. Every problem is collected and reported at once in one
 * ConfigError, in a fixed order (unknown keys, endpoints, the guards, hygiene, the cache,
 * telemetry), so the user fixes a configuration in one pass rather than one error per start.
 */
import { ConfigError } from '../errors.js';
import type { LoggerLike } from '../telemetry/logger.js';
import { resolveAdaptiveLimit } from './adaptive-limit.js';
import { resolveCacheOptions } from './cache.js';
import { resolveConsolidationOptions } from './consolidation.js';
import { DEFAULTS } from './defaults.js';
import { resolveEndpoints } from './endpoints.js';
import { resolveFailoverOptions } from './failover.js';
import { resolveHedgeOptions } from './hedge.js';
import { resolveRecoveryOptions } from './outlier.js';
import type { BreakerOptions, QueueOptions, RetryOptions } from './policy-types.js';
import type {
  ResolvedHygieneOptions,
  ResolvedOptions,
  ResolvedRoutingOptions,
} from './resolved.js';
import {
  checkGroup,
  checkValue,
  hasMethods,
  isBoolean,
  isInt,
  isNumber,
  isOneOf,
  isPlainObject,
  MAX_TIMER_MS,
  OPTION_WORDING,
  type Schema,
  walk,
} from './schema.js';
import { resolveMetricsOptions, resolveTracingOptions } from './telemetry.js';

// Each top-level key is checked below, in a fixed order; the schema only rejects unknown ones.
const TOP: Schema = {
  primary: null,
  replicas: null,
  breaker: null,
  retry: null,
  queue: null,
  routing: null,
  logger: null,
  ownsPools: null,
  validate: null,
  resetOnRelease: null,
  leakDetection: null,
  health: null,
  outlier: null,
  slowStart: null,
  connectPacing: null,
  cache: null,
  failover: null,
  consolidation: null,
  hedge: null,
  metrics: null,
  tracing: null,
};
const BREAKER: Schema = {
  enabled: isBoolean,
  errorThresholdPercentage: isNumber(0, 100),
  volumeThreshold: isInt(0),
  consecutiveFailures: isInt(0),
  resetTimeout: isInt(1, MAX_TIMER_MS),
  slowCallMs: isInt(0, MAX_TIMER_MS),
  rollingCountTimeout: isInt(1, MAX_TIMER_MS),
  rollingCountBuckets: isInt(1),
};
const RETRY: Schema = {
  retries: isInt(0, 100),
  minTimeout: isNumber(0, MAX_TIMER_MS),
  maxTimeout: isNumber(0, MAX_TIMER_MS),
  factor: isNumber(1),
  budgetPercent: isNumber(0, 100),
  budgetMinRetries: isInt(0),
};
// adaptiveLimit has a schema of its own (adaptive-limit.ts).
const QUEUE: Schema = {
  maxWaiting: isInt(0),
  acquireTimeout: isInt(1, MAX_TIMER_MS),
  maxQueueDelayMs: isInt(0, MAX_TIMER_MS),
  adaptiveLimit: null,
};
const ROUTING: Schema = {
  balancer: isOneOf('round-robin', 'random', 'least-busy', 'weighted'),
  queryRouting: isOneOf('primary', 'auto'),
  fallbackToPrimary: isBoolean,
  maxLagMs: isInt(0, MAX_TIMER_MS),
  maxLagBytes: isInt(0),
  consistencyWaitMs: isInt(0, MAX_TIMER_MS),
};
const VALIDATE: Schema = {
  idleAfter: isInt(0, MAX_TIMER_MS),
  timeout: isInt(1, MAX_TIMER_MS),
  primaryWritable: isBoolean,
};
const LEAK_DETECTION: Schema = { threshold: isInt(1, MAX_TIMER_MS) };
const HEALTH: Schema = {
  enabled: isBoolean,
  intervalMs: isInt(10, MAX_TIMER_MS),
  timeoutMs: isInt(1, MAX_TIMER_MS),
};

const isLoggerLike = (v: unknown): v is LoggerLike =>
  hasMethods(v, ['error', 'warn', 'info', 'debug']);

/** Problems that involve two options of a group; each option alone has passed its check. */
function crossProblems(retry: Required<RetryOptions>, breaker: Required<BreakerOptions>): string[] {
  const problems: string[] = [];
  if (retry.minTimeout > retry.maxTimeout) {
    problems.push(
      `retry.minTimeout (${retry.minTimeout}) must not exceed retry.maxTimeout (${retry.maxTimeout})`,
    );
  }
  // opossum splits the window into equal buckets.
  if (breaker.rollingCountTimeout % breaker.rollingCountBuckets !== 0) {
    problems.push(
      `breaker.rollingCountTimeout (${breaker.rollingCountTimeout}) must be divisible by breaker.rollingCountBuckets (${breaker.rollingCountBuckets})`,
    );
  }
  return problems;
}

function resolveHygiene(
  input: Record<string, unknown>,
  problems: string[],
): ResolvedHygieneOptions {
  const validate = checkGroup('validate', input.validate, VALIDATE, problems);
  const leakDetection = checkGroup('leakDetection', input.leakDetection, LEAK_DETECTION, problems);
  return {
    validate: {
      idleAfter: validate.idleAfter as number | undefined,
      timeout: (validate.timeout as number | undefined) ?? DEFAULTS.validate.timeout,
      primaryWritable:
        (validate.primaryWritable as boolean | undefined) ?? DEFAULTS.validate.primaryWritable,
    },
    resetOnRelease:
      (input.resetOnRelease as 'none' | 'discard' | undefined) ?? DEFAULTS.resetOnRelease,
    leakDetection: { threshold: leakDetection.threshold as number | undefined },
  };
}

/** Validates options and fills in defaults. Throws ConfigError listing every problem. */
export function resolveOptions(input: unknown): ResolvedOptions {
  if (!isPlainObject(input)) {
    throw new ConfigError(['options: must be an object with at least `primary`']);
  }
  const problems: string[] = [];
  walk(input, TOP, '', problems, OPTION_WORDING);
  const { primary, primaryCandidates, replicas } = resolveEndpoints(
    input.primary,
    input.replicas,
    problems,
  );
  const group = (name: string, schema: Schema) => checkGroup(name, input[name], schema, problems);
  const breaker = { ...DEFAULTS.breaker, ...group('breaker', BREAKER) } as Required<BreakerOptions>;
  const retry = { ...DEFAULTS.retry, ...group('retry', RETRY) } as Required<RetryOptions>;
  const queue: ResolvedOptions['queue'] = {
    ...(DEFAULTS.queue as Required<Omit<QueueOptions, 'adaptiveLimit'>>),
    ...group('queue', QUEUE),
    adaptiveLimit: resolveAdaptiveLimit(
      isPlainObject(input.queue) ? input.queue.adaptiveLimit : undefined,
      problems,
    ),
  };
  const routing = { ...DEFAULTS.routing, ...group('routing', ROUTING) } as ResolvedRoutingOptions;
  problems.push(...crossProblems(retry, breaker));
  if (input.logger !== undefined && input.logger !== false && !isLoggerLike(input.logger)) {
    problems.push('logger: must be a pino-compatible logger (error, warn, info, debug) or false');
  }
  const hygiene = resolveHygiene(input, problems);
  const health = { ...DEFAULTS.health, ...group('health', HEALTH) } as ResolvedOptions['health'];
  checkValue('resetOnRelease', input.resetOnRelease, isOneOf('none', 'discard'), problems);
  const failover = resolveFailoverOptions(
    input.failover,
    primaryCandidates !== undefined,
    problems,
  );
  checkValue('ownsPools', input.ownsPools, isBoolean, problems);
  const cache = resolveCacheOptions(input.cache, problems);
  const consolidation = resolveConsolidationOptions(input.consolidation, problems);
  const hedge = resolveHedgeOptions(input.hedge, problems);
  const metrics = resolveMetricsOptions(input.metrics, problems);
  const tracing = resolveTracingOptions(input.tracing, problems);
  const recovery = resolveRecoveryOptions(input, health.enabled, problems);
  if (problems.length > 0 || primary === undefined) throw new ConfigError(problems);
  return {
    primary,
    primaryCandidates,
    replicas,
    breaker,
    retry,
    queue,
    routing,
    logger: input.logger as LoggerLike | false | undefined,
    ownsPools: (input.ownsPools as boolean | undefined) ?? DEFAULTS.ownsPools,
    failover,
    cache,
    consolidation,
    hedge,
    hygiene,
    health,
    lag: { maxLagMs: routing.maxLagMs, maxLagBytes: routing.maxLagBytes },
    metrics,
    tracing,
    recovery,
  };
}
