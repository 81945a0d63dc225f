/**
 * The defaults and the validation of `queue.adaptiveLimit`, in two steps: `resolveAdaptiveLimit`
 * checks the pool-wide option (every problem listed, unknown keys refused, each algorithm's own
 * keys only with that algorithm), and `adaptiveLimitFor` fits the result to one endpoint, whose
 * pool size bounds the limit.
 */
import { DEFAULTS } from './defaults.js';
import {
  checkGroup,
  describe,
  isInt,
  isNumber,
  isOneOf,
  isPlainObject,
  MAX_TIMER_MS,
  type Schema,
} from './schema.js';

/** The defaults of `queue.adaptiveLimit` (maxLimit and initialLimit depend on the endpoint). */
const ADAPTIVE_LIMIT_DEFAULTS = DEFAULTS.adaptiveLimit;

interface ResolvedLimitCommon {
  minLimit: number;
  /** Undefined: the endpoint's maxConcurrent. */
  maxLimit: number | undefined;
  /** Undefined: maxLimit. */
  initialLimit: number | undefined;
  windowMs: number;
  minSamples: number;
}

export interface ResolvedGradient2Limit extends ResolvedLimitCommon {
  algorithm: 'gradient2';
  tolerance: number;
  smoothing: number;
  longWindow: number;
  queueSize: number;
}

export interface ResolvedVegasLimit extends ResolvedLimitCommon {
  algorithm: 'vegas';
  /** Undefined: Netflix's function of the limit (3 × log10). */
  alpha: number | undefined;
  /** Undefined: Netflix's function of the limit (6 × log10). */
  beta: number | undefined;
  smoothing: number;
  probeMultiplier: number;
}

/** `queue.adaptiveLimit` checked, with the pool-wide defaults filled in. */
export type ResolvedAdaptiveLimit = ResolvedGradient2Limit | ResolvedVegasLimit;

/** The limit of one endpoint: its bounds fixed against the endpoint's pool size. */
export type EndpointLimitSettings = ResolvedAdaptiveLimit & {
  maxLimit: number;
  initialLimit: number;
};

/** Limits above this are a typo; a pool of this size is not a pool. */
const MAX_LIMIT = 100_000;

const COMMON: Schema = {
  algorithm: isOneOf('gradient2', 'vegas'),
  minLimit: isInt(1, MAX_LIMIT),
  maxLimit: isInt(1, MAX_LIMIT),
  initialLimit: isInt(1, MAX_LIMIT),
  windowMs: isInt(1, MAX_TIMER_MS),
  minSamples: isInt(1, 1_000_000),
};
const GRADIENT2: Schema = {
  ...COMMON,
  tolerance: isNumber(1, 100),
  smoothing: isNumber(0, 1),
  longWindow: isInt(1, 1_000_000),
  queueSize: isNumber(0, MAX_LIMIT),
};
const VEGAS: Schema = {
  ...COMMON,
  alpha: isNumber(0, MAX_LIMIT),
  beta: isNumber(0, MAX_LIMIT),
  smoothing: isNumber(0, 1),
  probeMultiplier: isInt(1, 1_000_000),
};

const PATH = 'queue.adaptiveLimit';

/**
 * Validates `queue.adaptiveLimit` and fills in its defaults. Appends one message per problem to
 * `problems`; returns false when the option is off (absent or false) or has problems.
 */
export function resolveAdaptiveLimit(
  input: unknown,
  problems: string[],
): ResolvedAdaptiveLimit | false {
  if (input === undefined || input === false) return false;
  if (input !== true && !isPlainObject(input)) {
    problems.push(`${PATH}: must be true, false or an object, got ${describe(input)}`);
    return false;
  }
  const value: Record<string, unknown> = input === true ? {} : input;
  // The algorithm picks the schema, so that a knob of the other one is refused as unknown.
  const vegas = value.algorithm === 'vegas';
  const before = problems.length;
  const given = checkGroup(PATH, value, vegas ? VEGAS : GRADIENT2, problems);
  const d = ADAPTIVE_LIMIT_DEFAULTS;
  const common: ResolvedLimitCommon = {
    minLimit: (given.minLimit as number | undefined) ?? d.minLimit,
    maxLimit: given.maxLimit as number | undefined,
    initialLimit: given.initialLimit as number | undefined,
    windowMs: (given.windowMs as number | undefined) ?? d.windowMs,
    minSamples: (given.minSamples as number | undefined) ?? d.minSamples,
  };
  crossProblems(common, given, problems);
  if (problems.length > before) return false;
  if (vegas) {
    return {
      algorithm: 'vegas',
      ...common,
      alpha: given.alpha as number | undefined,
      beta: given.beta as number | undefined,
      smoothing: (given.smoothing as number | undefined) ?? d.vegas.smoothing,
      probeMultiplier: (given.probeMultiplier as number | undefined) ?? d.vegas.probeMultiplier,
    };
  }
  return {
    algorithm: 'gradient2',
    ...common,
    tolerance: (given.tolerance as number | undefined) ?? d.gradient2.tolerance,
    smoothing: (given.smoothing as number | undefined) ?? d.gradient2.smoothing,
    longWindow: (given.longWindow as number | undefined) ?? d.gradient2.longWindow,
    queueSize: (given.queueSize as number | undefined) ?? d.gradient2.queueSize,
  };
}

/** Problems between two options, each of which passed its own check. */
function crossProblems(
  common: ResolvedLimitCommon,
  given: Record<string, unknown>,
  problems: string[],
): void {
  const { minLimit, maxLimit, initialLimit } = common;
  if (maxLimit !== undefined && minLimit > maxLimit) {
    problems.push(`${PATH}.minLimit (${minLimit}) must not exceed ${PATH}.maxLimit (${maxLimit})`);
  }
  if (initialLimit !== undefined && initialLimit < minLimit) {
    problems.push(
      `${PATH}.initialLimit (${initialLimit}) must not be below ${PATH}.minLimit (${minLimit})`,
    );
  }
  if (initialLimit !== undefined && maxLimit !== undefined && initialLimit > maxLimit) {
    problems.push(
      `${PATH}.initialLimit (${initialLimit}) must not exceed ${PATH}.maxLimit (${maxLimit})`,
    );
  }
  const { alpha, beta } = given as { alpha?: number; beta?: number };
  if (alpha !== undefined && beta !== undefined && alpha >= beta) {
    problems.push(`${PATH}.alpha (${alpha}) must be below ${PATH}.beta (${beta})`);
  }
}

/**
 * The limit of an endpoint whose pool holds `maxConcurrent` connections: maxLimit no higher
 * (more permits than connections would only queue inside pg), minLimit and initialLimit within.
 */
export function adaptiveLimitFor(
  options: ResolvedAdaptiveLimit,
  maxConcurrent: number,
): EndpointLimitSettings {
  const maxLimit = Math.min(options.maxLimit ?? maxConcurrent, maxConcurrent);
  const minLimit = Math.min(options.minLimit, maxLimit);
  const initialLimit = Math.min(Math.max(options.initialLimit ?? maxLimit, minLimit), maxLimit);
  return { ...options, minLimit, maxLimit, initialLimit };
}
