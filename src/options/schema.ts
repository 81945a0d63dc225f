/**
 * The checks and the one walker behind every option the library takes: the constructor's (pool
 * and cache) and each call's. A check returns the problem as words, or undefined; the walker runs
 * a table of checks over an object, keeps going after a problem so that every problem is listed at
 * once, and treats an unknown key as a problem (a misspelt `acquireTimeOut` must not silently fall
 * back to the default).
 */

/** The problem with a value (completing "<path>: ..."), or undefined when it is fine. */
export type Check = (value: unknown) => string | undefined;

/**
 * The known keys of an object and their checks, in the order the "known:" list names them.
 * `null` marks a key that is known but checked by the caller (it needs more than one value).
 */
export type Schema = Readonly<Record<string, Check | null>>;

/** Node's timers fire after 1 ms for any delay above this (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

// Without an upper bound the message says "from 0 up", as users read it; with one, it names it.
export const isInt =
  (min: number, max?: number): Check =>
  (v) =>
    typeof v === 'number' &&
    Number.isInteger(v) &&
    v >= min &&
    v <= (max ?? Number.MAX_SAFE_INTEGER)
      ? undefined
      : `must be an integer from ${min}${max === undefined ? ' up' : ` to ${max}`}`;

export const isNumber =
  (min: number, max?: number): Check =>
  (v) =>
    typeof v === 'number' &&
    Number.isFinite(v) &&
    v >= min &&
    v <= (max ?? Number.POSITIVE_INFINITY)
      ? undefined
      : `must be a finite number from ${min}${max === undefined ? ' up' : ` to ${max}`}`;

export const isBoolean: Check = (v) =>
  typeof v === 'boolean' ? undefined : 'must be true or false';

export const isOneOf =
  (...allowed: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && allowed.includes(v)
      ? undefined
      : `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`;

export const isFunction: Check = (v) =>
  typeof v === 'function' ? undefined : 'must be a function';

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `v` is an object (a class instance too) with a function under each of `names`. */
export function hasMethods(v: unknown, names: readonly string[]): boolean {
  return (
    typeof v === 'object' &&
    v !== null &&
    names.every((n) => typeof (v as Record<string, unknown>)[n] === 'function')
  );
}

/**
 * A value as a problem names it. Strings are cut short and objects named only by their kind:
 * whatever the user passed (a pool, a connection string) must not be printed whole.
 */
export function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined)
    return String(v);
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/** How the walker words a problem; constructor options and call options read differently. */
export interface Wording {
  unknown(path: string, key: string, known: readonly string[]): string;
  invalid(path: string, key: string, problem: string, value: unknown): string;
}

const join = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);

/** Constructor options: `retry.factor: must be ..., got 'two'`, paths dotted from the top. */
export const OPTION_WORDING: Wording = {
  unknown: (path, key, known) => `${join(path, key)}: unknown option (known: ${known.join(', ')})`,
  invalid: (path, key, problem, value) => `${join(path, key)}: ${problem}, got ${describe(value)}`,
};

/**
 * Runs `schema` over the own keys of `value`, in the order they were given, appending one problem
 * per bad or unknown key. A key given as undefined keeps its default, as if it were left out.
 * When `given` is passed, the keys that passed their check are copied into it (the caller then
 * spreads them over the defaults); per-call checks pass none, so a good call allocates nothing.
 */
export function walk(
  value: object,
  schema: Schema,
  path: string,
  problems: string[],
  wording: Wording,
  given?: Record<string, unknown>,
): void {
  for (const [key, v] of Object.entries(value)) {
    // Own keys only: `constructor` or `toString` must not find Object.prototype's methods.
    const check = Object.hasOwn(schema, key) ? schema[key] : undefined;
    if (check === undefined) {
      problems.push(wording.unknown(path, key, Object.keys(schema)));
      continue;
    }
    if (check === null || v === undefined) continue;
    const problem = check(v);
    if (problem !== undefined) problems.push(wording.invalid(path, key, problem, v));
    else if (given !== undefined) given[key] = v;
  }
}

/**
 * One group of constructor options (`retry`, `cache.lock`, ...): absent is fine, anything but a
 * plain object is a problem. Returns the keys that passed their checks.
 */
export function checkGroup(
  path: string,
  value: unknown,
  schema: Schema,
  problems: string[],
): Record<string, unknown> {
  const given: Record<string, unknown> = {};
  if (value === undefined) return given;
  if (!isPlainObject(value)) {
    problems.push(`${path}: must be an object`);
    return given;
  }
  walk(value, schema, path, problems, OPTION_WORDING, given);
  return given;
}

/** One constructor option checked on its own (`ownsPools`), absent being fine. */
export function checkValue(path: string, value: unknown, check: Check, problems: string[]): void {
  const problem = value === undefined ? undefined : check(value);
  if (problem !== undefined) problems.push(`${path}: ${problem}, got ${describe(value)}`);
}
