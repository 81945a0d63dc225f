/**
 * Checks of the options object of a single call (read, write, connect, transaction, end). As with
 * the constructor's options, an unknown key (a misspelt `idempotant`) is an error rather than
 * silently ignored. Runs only when an options object is passed; a good one costs a key scan and
 * allocates nothing but the scan's entries.
 */
import { ConfigError } from '../errors.js';
import { cacheCallProblem, tagsProblem } from './cache.js';
import {
  type Check,
  isBoolean,
  isFunction,
  isInt,
  isOneOf,
  MAX_TIMER_MS,
  type Schema,
  type Wording,
  walk,
} from './schema.js';

const isSignal: Check = (v) =>
  typeof v === 'object' && v !== null && typeof (v as AbortSignal).aborted === 'boolean'
    ? undefined
    : 'must be an AbortSignal';
const isTimeout = isInt(1, MAX_TIMER_MS);
/** A consistency token: an LSN as PostgreSQL prints it. */
const isToken: Check = (v) =>
  typeof v === 'string' && /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(v)
    ? undefined
    : 'must be a consistency token';
const isRole = isOneOf('read', 'write');

export const READ_KEYS: Schema = {
  signal: isSignal,
  timeout: isTimeout,
  idempotent: isBoolean,
  after: isToken,
  cache: cacheCallProblem,
  consolidate: isBoolean,
};
export const WRITE_KEYS: Schema = {
  signal: isSignal,
  timeout: isTimeout,
  idempotent: isBoolean,
  invalidates: tagsProblem,
  captureToken: isBoolean,
};
export const CONNECT_KEYS: Schema = {
  signal: isSignal,
  timeout: isTimeout,
  role: isRole,
};
export const TRANSACTION_KEYS: Schema = {
  signal: isSignal,
  timeout: isTimeout,
  retries: isInt(0, 100),
  role: isRole,
  isolation: isOneOf('read committed', 'repeatable read', 'serializable'),
  readOnly: isBoolean,
  deferrable: isBoolean,
  onToken: isFunction,
};
/** end({ timeout: 0 }) means: do not wait for calls in flight. */
export const END_KEYS: Schema = {
  timeout: isInt(0, MAX_TIMER_MS),
};

/** Calls name the method rather than a path: `write(): unknown option 'idempotant' (...)`. */
const CALL_WORDING: Wording = {
  unknown: (method, key, known) =>
    `${method}(): unknown option '${key}' (known: ${known.join(', ')})`,
  invalid: (method, key) => `${method}(): option '${key}' has an invalid value`,
};

/** The ConfigError for a call's bad options, or undefined when they are fine. */
export function callOptionsError(
  method: string,
  options: unknown,
  known: Schema,
): ConfigError | undefined {
  if (options === undefined) return undefined;
  const problems: string[] = [];
  // Any object, as before: an array passes here and its indexes are reported as unknown keys.
  if (typeof options !== 'object' || options === null) {
    problems.push(`${method}(): options must be an object`);
  } else {
    walk(options, known, method, problems, CALL_WORDING);
  }
  return problems.length > 0 ? new ConfigError(problems) : undefined;
}
