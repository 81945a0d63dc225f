/**
 * The shape of a cache entry (format 1), checked whole before anything in it is used. An entry
 * comes from outside the process (anyone who can write to the Redis can write one), so nothing
 * is assumed: every property is an own property of the kind the encoder writes, no unknown
 * property is accepted (the result object is handed to the caller as it is), no count is out of
 * range, and no path or column may name `__proto__`, `constructor` or `prototype`. The encoder
 * runs the same check on what it is about to write, so an entry that would be refused on the way
 * back is never written (the result is then simply not cached).
 *
 * Checks allocate nothing: they walk the parsed value with own-property tests and return a
 * constant message, or undefined when the shape is right. Reviving (codec.ts) checks the rest:
 * that every path leads, through own properties, to the null the encoder left there.
 */

/** A parsed JSON object. */
export type JsonObject = Record<string, unknown>;

export const hasOwn = Object.hasOwn as (o: object, key: PropertyKey) => boolean;

/** An own property's value, never an inherited one (Object.prototype may have been tampered with). */
export function own(o: JsonObject, key: string): unknown {
  return hasOwn(o, key) ? o[key] : undefined;
}

/** A path segment or column that could reach a prototype if followed with plain property access. */
export function isUnsafeKey(key: string): boolean {
  return key === '__proto__' || key === 'constructor' || key === 'prototype';
}

/** A path segment as the encoder writes it: an array index, or an object key that is safe. */
export function isSegment(s: unknown): s is string | number {
  return typeof s === 'string' ? !isUnsafeKey(s) : Number.isSafeInteger(s) && (s as number) >= 0;
}

/** A JSON object (not an array, not null). */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Epoch milliseconds a valid Date can hold. */
export function isEpochMs(v: unknown): v is number {
  return Number.isSafeInteger(v) && Math.abs(v as number) <= 8.64e15;
}

const MAX_OID = 4_294_967_295;

function isIntIn(v: unknown, min: number, max: number): boolean {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
}
const BIGINT_TEXT = /^-?\d+$/;

/** Why `envelope` is not a well-formed entry; undefined when it is. `v` and `k` are checked by the caller. */
export function envelopeProblem(envelope: JsonObject): string | undefined {
  let rows: unknown[] | undefined;
  for (const name in envelope) {
    if (!hasOwn(envelope, name)) continue;
    switch (name) {
      case 'v':
      case 'k':
        break;
      case 'f':
        if (!isIntIn(envelope.f, 0, Number.MAX_SAFE_INTEGER)) {
          return 'its freshness is not a time';
        }
        break;
      case 'p': {
        const problem = resultProblem(envelope.p);
        if (problem !== undefined) return problem;
        rows = (envelope.p as JsonObject).rows as unknown[];
        break;
      }
      case 's':
      case 'c':
        break;
      default:
        return 'it has an unknown property';
    }
  }
  if (rows === undefined) return 'it holds no result';
  if (!hasOwn(envelope, 'f')) return 'it has no freshness';
  if (hasOwn(envelope, 'c')) {
    const problem = columnsProblem(envelope.c);
    if (problem !== undefined) return problem;
  }
  if (hasOwn(envelope, 's')) return specialsProblem(envelope.s);
  return undefined;
}

/** The result: `rows` (required), `command`, `rowCount`, `oid`, `fields`, and nothing else. */
function resultProblem(result: unknown): string | undefined {
  if (!isObject(result)) return 'its result is not an object';
  let rowCount: unknown = null;
  for (const name in result) {
    if (!hasOwn(result, name)) continue;
    const value = result[name];
    switch (name) {
      case 'rows':
        break;
      case 'command':
        if (value !== null && typeof value !== 'string') return 'command is not a string';
        break;
      case 'rowCount':
        rowCount = value;
        break;
      case 'oid':
        if (value !== null && !isIntIn(value, 0, MAX_OID)) {
          return 'oid is not an oid';
        }
        break;
      case 'fields': {
        const problem = fieldsProblem(value);
        if (problem !== undefined) return problem;
        break;
      }
      default:
        return 'its result has an unknown property';
    }
  }
  const rows = own(result, 'rows');
  if (!Array.isArray(rows)) return 'rows is not an array';
  for (let i = 0; i < rows.length; i++) {
    const row: unknown = rows[i];
    if (typeof row !== 'object' || row === null) return 'a row is not an object or an array';
    // pg never makes a row with an own __proto__ (its assignment would set the prototype).
    if (hasOwn(row, '__proto__')) return 'a row has a __proto__ column';
  }
  // A read's rowCount counts the rows it returned (null for commands that report none).
  if (rowCount !== null && !isIntIn(rowCount, 0, rows.length)) {
    return 'rowCount is not a count of its rows';
  }
  return undefined;
}

/** pg's field descriptions: objects with a string `name` and plain values (numbers, strings). */
function fieldsProblem(fields: unknown): string | undefined {
  if (!Array.isArray(fields)) return 'fields is not an array';
  for (let i = 0; i < fields.length; i++) {
    const field: unknown = fields[i];
    if (!isObject(field)) return 'a field is not an object';
    if (typeof own(field, 'name') !== 'string') return 'a field has no name';
    for (const key in field) {
      if (!hasOwn(field, key)) continue;
      if (isUnsafeKey(key)) return 'a field has an unsafe property';
      const v = field[key];
      if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        return 'a field property is not a plain value';
      }
    }
  }
  return undefined;
}

/** Column rules: `[column, 'D' | 'B']`, the column an index (array rows) or a safe key. */
function columnsProblem(columns: unknown): string | undefined {
  if (!Array.isArray(columns)) return 'its column rules are not an array';
  for (let i = 0; i < columns.length; i++) {
    const rule: unknown = columns[i];
    if (!Array.isArray(rule) || rule.length !== 2) return 'a column rule is not a pair';
    if (!isSegment(rule[0])) return 'a column rule names no usable column';
    if (rule[1] !== 'D' && rule[1] !== 'B') return 'a column rule has an unknown code';
  }
  return undefined;
}

/**
 * Special values: `[code, data, 'rows', row, column, ...path]`, data of the code's kind. Only
 * rows hold them: the other parts of a result are plain JSON.
 */
function specialsProblem(specials: unknown): string | undefined {
  if (!Array.isArray(specials)) return 'its special values are not an array';
  for (let i = 0; i < specials.length; i++) {
    const special: unknown = specials[i];
    if (!Array.isArray(special) || special.length < 5) return 'a special value has no path';
    if (!specialDataFits(special[0], special[1])) return 'a special value does not fit its code';
    if (special[2] !== 'rows') return 'a special value is not in the rows';
    for (let j = 3; j < special.length; j++) {
      if (!isSegment(special[j])) return 'a special value has an unusable path';
    }
  }
  return undefined;
}

function specialDataFits(code: unknown, data: unknown): boolean {
  switch (code) {
    case 'D':
      return data === null || isEpochMs(data);
    case 'B':
      return typeof data === 'string';
    case 'I':
      return typeof data === 'string' && BIGINT_TEXT.test(data);
    case 'U':
      return data === null;
    case 'N':
      return data === 'NaN' || data === 'Infinity' || data === '-Infinity' || data === '-0';
    default:
      return false;
  }
}
