/**
 * Checks the options object of a single call. Like the constructor's options, an unknown key
 * (a misspelt `idempotant`) is an error rather than silently ignored. Runs only when an options
 * object is passed, and costs a key scan.
 */
import { isCacheCallOption, isTagList } from './cache/options.js';
import { ConfigError } from './errors.js';

type KeyCheck = (value: unknown) => boolean;

const isSignal: KeyCheck = (v) =>
  typeof v === 'object' && v !== null && typeof (v as AbortSignal).aborted === 'boolean';
const isBoolean: KeyCheck = (v) => typeof v === 'boolean';
const oneOf =
  (...allowed: string[]): KeyCheck =>
  (v) =>
    typeof v === 'string' && allowed.includes(v);

const isTimeout: KeyCheck = (v) =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 2_147_483_647;

const isToken: KeyCheck = (v) =>
  typeof v === 'string' && /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(v);

export const READ_KEYS: Readonly<Record<string, KeyCheck>> = {
  signal: isSignal,
  timeout: isTimeout,
  idempotent: isBoolean,
  after: isToken,
  cache: isCacheCallOption,
};
export const WRITE_KEYS: Readonly<Record<string, KeyCheck>> = {
  signal: isSignal,
  timeout: isTimeout,
  idempotent: isBoolean,
  invalidates: isTagList,
  captureToken: isBoolean,
};
export const CONNECT_KEYS: Readonly<Record<string, KeyCheck>> = {
  signal: isSignal,
  timeout: isTimeout,
  role: oneOf('read', 'write'),
};
export const TRANSACTION_KEYS: Readonly<Record<string, KeyCheck>> = {
  signal: isSignal,
  timeout: isTimeout,
  retries: (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 100,
  role: oneOf('read', 'write'),
  isolation: oneOf('read committed', 'repeatable read', 'serializable'),
  readOnly: isBoolean,
  deferrable: isBoolean,
  onToken: (v) => typeof v === 'function',
};
/** end({ timeout: 0 }) means: do not wait for calls in flight. */
export const END_KEYS: Readonly<Record<string, KeyCheck>> = {
  timeout: (v) => v === 0 || isTimeout(v),
};

/** The ConfigError for a call's bad options, or undefined when they are fine. */
export function callOptionsError(
  method: string,
  options: unknown,
  known: Readonly<Record<string, KeyCheck>>,
): ConfigError | undefined {
  if (options === undefined) return undefined;
  const problems: string[] = [];
  if (typeof options !== 'object' || options === null) {
    problems.push(`${method}(): options must be an object`);
  } else {
    for (const [key, value] of Object.entries(options)) {
      const check = known[key];
      if (check === undefined) {
        problems.push(
          `${method}(): unknown option '${key}' (known: ${Object.keys(known).join(', ')})`,
        );
      } else if (value !== undefined && !check(value)) {
        problems.push(`${method}(): option '${key}' has an invalid value`);
      }
    }
  }
  return problems.length > 0 ? new ConfigError(problems) : undefined;
}
