/**
 * Serialisation of query results as JSON plus a description of the values JSON cannot carry:
 * Date, Buffer (any ArrayBuffer view), bigint, undefined, NaN, ±Infinity and -0. Decoding is one
 * native `JSON.parse`, a check of the whole shape (entry-shape.ts), and then a revival pass over
 * exactly those values, so a jsonb value that happens to look like a tag (`{"$date": ...}`) is
 * never mistaken for one.
 *
 * Two forms of description:
 * - column rules, for the common case of a column whose every value is a Date (or every value a
 *   Buffer), or null: the values are written inline (epoch ms, base64) and the rule says which
 *   column to revive, so the entry stays about as small and as fast to parse as the plain JSON;
 * - specials, for any other such value wherever it is in the rows (in a jsonb, an array, a mixed
 *   column): written as null, and listed as `[code, data, 'rows', ...path]`.
 *
 * An entry is data from outside the process. Revival follows paths only through own properties
 * of the parsed JSON (never into `__proto__`, `constructor` or `prototype`, never through an
 * inherited property) and replaces only the null the encoder left at the end of each; anything
 * else rejects the entry, which the cache then treats as a miss.
 *
 * Class instances other than Date and Buffer (pg's interval type, say) become plain data as
 * JSON.stringify would make them: their `toJSON()` if they have one, else their own enumerable
 * properties.
 */
import type { QueryResultLike } from '../pg-like.js';
import {
  envelopeProblem,
  hasOwn,
  isEpochMs,
  isObject,
  isUnsafeKey,
  type JsonObject,
  own,
} from './entry-shape.js';

/** A value JSON cannot carry: its code, its data, then its path from the root. */
export type Special = [
  code: SpecialCode,
  data: string | number | null,
  ...path: Array<string | number>,
];
type SpecialCode = 'D' | 'B' | 'I' | 'U' | 'N';

/** Format of the entries this module writes; entries of another format are treated as misses. */
export const ENTRY_FORMAT = 1;

/** What a cache entry holds, besides the result. */
interface EntryEnvelope {
  /** Format. */
  v: number;
  /** The entry's own key: a reply meant for another key is detected, never served. */
  k: string;
  /** Epoch ms until which the entry is fresh (the writer's clock). */
  f: number;
  /** The result: command, rowCount, oid, fields, rows. */
  p: Record<string, unknown>;
  /** Values JSON cannot carry, with their paths inside `p`. */
  s?: Special[];
  /** Columns of `p.rows` written inline: [column (key or index), 'D' | 'B']. */
  c?: ColumnRule[];
}

/** A column of rows whose non-null values are all Dates ('D') or all Buffers ('B'). */
type ColumnRule = [column: string | number, code: 'D' | 'B'];

/**
 * Why a stored value was not served: `format`, the entry of another version of this library (a
 * plain miss); `foreign`, the well-formed entry of another key (a reply that reached the wrong
 * command: a sign of a desynchronised connection); `corrupt`, anything else (tampered with,
 * truncated, not written by this library).
 */
export interface EntryRejection {
  readonly rejected: 'format' | 'foreign' | 'corrupt';
  readonly reason: string;
}

const OTHER_FORMAT: EntryRejection = { rejected: 'format', reason: 'another entry format' };
const FOREIGN: EntryRejection = { rejected: 'foreign', reason: 'the entry of another key' };

function corrupt(reason: string): EntryRejection {
  return { rejected: 'corrupt', reason };
}

/** Whether decodeEntry() gave an entry rather than a rejection. */
export function isDecoded(entry: DecodedEntry | EntryRejection): entry is DecodedEntry {
  return !('rejected' in entry);
}

/** Result properties kept in an entry (pg's Result has private ones too: parsers, row ctor). */
const RESULT_KEYS = ['command', 'rowCount', 'oid', 'fields', 'rows'] as const;

interface Walk {
  specials: Special[];
  path: Array<string | number>;
}

function mark(w: Walk, code: SpecialCode, data: string | number | null): null {
  w.specials.push([code, data, ...w.path]);
  return null;
}

function copy(value: unknown, w: Walk): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isFinite(value) && !Object.is(value, -0)) return value;
      return mark(w, 'N', Object.is(value, -0) ? '-0' : String(value));
    case 'bigint':
      return mark(w, 'I', value.toString());
    case 'undefined':
      return mark(w, 'U', null);
    case 'object':
      return copyObject(value, w);
    default:
      // Functions and symbols: nothing pg returns; JSON would drop them too.
      return null;
  }
}

function copyObject(value: object | null, w: Walk): unknown {
  if (value === null) return null;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      w.path.push(i);
      out[i] = copy(value[i], w);
      w.path.pop();
    }
    return out;
  }
  if (value instanceof Date) {
    const t = value.getTime();
    return mark(w, 'D', Number.isNaN(t) ? null : t);
  }
  if (ArrayBuffer.isView(value)) {
    return mark(
      w,
      'B',
      Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'),
    );
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return copy(toJSON.call(value), w);
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    w.path.push(key);
    setOwn(out, key, copy((value as Record<string, unknown>)[key], w));
    w.path.pop();
  }
  return out;
}

/**
 * `out[key] = value`, except for a key `__proto__` (JSON.parse makes it an own property of a jsonb
 * value): plain assignment would set the copy's prototype instead and lose the value.
 */
function setOwn(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(out, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    out[key] = value;
  }
}

/**
 * The entry text for `result` under `key`, fresh until `freshUntil` (epoch ms). Throws when the
 * result has a shape decoding would refuse (rows that are not objects, a rowCount above its rows,
 * a special value outside the rows, an unsafe column name...): such a result is not cached.
 */
export function encodeEntry(key: string, result: object, freshUntil: number): string {
  const w: Walk = { specials: [], path: [] };
  const payload: Record<string, unknown> = {};
  let columns: ColumnRule[] = [];
  for (const name of RESULT_KEYS) {
    const value = (result as Record<string, unknown>)[name];
    if (value === undefined) continue;
    w.path.push(name);
    if (name === 'rows' && Array.isArray(value)) {
      columns = columnRules(value);
      payload[name] = columns.length === 0 ? copy(value, w) : copyRows(value, columns, w);
    } else {
      payload[name] = copy(value, w);
    }
    w.path.pop();
  }
  const envelope: EntryEnvelope = { v: ENTRY_FORMAT, k: key, f: freshUntil, p: payload };
  if (w.specials.length > 0) envelope.s = w.specials;
  if (columns.length > 0) envelope.c = columns;
  const problem = envelopeProblem(envelope as unknown as JsonObject);
  if (problem !== undefined) throw new Error(`the result cannot be cached: ${problem}`);
  return JSON.stringify(envelope);
}

/** The columns (of the first row) whose values in every row are all valid Dates or all Buffers, or null. */
function columnRules(rows: readonly unknown[]): ColumnRule[] {
  const first = rows[0];
  if (typeof first !== 'object' || first === null) return [];
  const rules: ColumnRule[] = [];
  const columns: Array<string | number> = Array.isArray(first)
    ? first.map((_, i) => i)
    : Object.keys(first);
  for (const column of columns) {
    let code: 'D' | 'B' | undefined;
    let uniform = true;
    for (const row of rows) {
      const v =
        typeof row === 'object' && row !== null
          ? (row as Record<string | number, unknown>)[column]
          : undefined;
      if (v === null) continue;
      const c =
        v instanceof Date && !Number.isNaN(v.getTime())
          ? 'D'
          : Buffer.isBuffer(v)
            ? 'B'
            : undefined;
      if (c === undefined || (code !== undefined && c !== code)) {
        uniform = false;
        break;
      }
      code = c;
    }
    if (uniform && code !== undefined) rules.push([column, code]);
  }
  return rules;
}

/** Copies rows, writing the values of rule columns inline (epoch ms, base64). */
function copyRows(rows: readonly unknown[], rules: readonly ColumnRule[], w: Walk): unknown[] {
  const inline = new Map(rules);
  const out = new Array<unknown>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as Record<string | number, unknown>;
    w.path.push(i);
    if (Array.isArray(row)) {
      const copied = new Array<unknown>(row.length);
      for (let j = 0; j < row.length; j++) {
        w.path.push(j);
        copied[j] = inline.has(j) ? inlineValue(row[j]) : copy(row[j], w);
        w.path.pop();
      }
      out[i] = copied;
    } else {
      const copied: Record<string, unknown> = {};
      for (const k of Object.keys(row)) {
        w.path.push(k);
        setOwn(copied, k, inline.has(k) ? inlineValue(row[k]) : copy(row[k], w));
        w.path.pop();
      }
      out[i] = copied;
    }
    w.path.pop();
  }
  return out;
}

function inlineValue(v: unknown): unknown {
  if (v === null) return null;
  return v instanceof Date ? v.getTime() : (v as Buffer).toString('base64');
}

/** A decoded entry: a fresh result object (never shared) and its freshness. */
export interface DecodedEntry {
  result: QueryResultLike;
  freshUntil: number;
}

/**
 * Decodes an entry read at `key`: the entry, or why it is not served (see {@link EntryRejection}).
 * Never throws, whatever the text.
 */
export function decodeEntry(text: string, key: string): DecodedEntry | EntryRejection {
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch {
    return corrupt('not JSON');
  }
  if (!isObject(envelope)) return corrupt('not an object');
  const k = own(envelope, 'k');
  if (k !== key) return typeof k === 'string' ? FOREIGN : corrupt('it names no key');
  const v = own(envelope, 'v');
  if (v !== ENTRY_FORMAT) return typeof v === 'number' ? OTHER_FORMAT : corrupt('no format');
  const problem = envelopeProblem(envelope);
  if (problem !== undefined) return corrupt(problem);
  const payload = envelope.p as JsonObject;
  const rows = payload.rows as unknown[];
  const columns = own(envelope, 'c') as ColumnRule[] | undefined;
  if (columns !== undefined) {
    const failed = reviveColumns(rows, columns);
    if (failed !== undefined) return corrupt(failed);
  }
  const specials = own(envelope, 's') as Special[] | undefined;
  if (specials !== undefined) {
    const failed = reviveSpecials(rows, specials);
    if (failed !== undefined) return corrupt(failed);
  }
  return { result: payload as unknown as QueryResultLike, freshUntil: envelope.f as number };
}

/** A JSON array or object made by JSON.parse (not a Date or Buffer revived a moment ago). */
function isContainer(v: unknown): v is JsonObject | unknown[] {
  return (
    Array.isArray(v) ||
    (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype)
  );
}

/**
 * Whether `holder[segment]` is an own slot of a parsed container: an index in range for an
 * array, an own key (never an unsafe one) for an object.
 */
function hasSlot(holder: unknown, segment: string | number): boolean {
  if (Array.isArray(holder)) {
    return typeof segment === 'number' && segment < holder.length;
  }
  return (
    typeof segment === 'string' &&
    !isUnsafeKey(segment) &&
    isContainer(holder) &&
    hasOwn(holder, segment)
  );
}

function reviveColumns(rows: unknown[], columns: readonly ColumnRule[]): string | undefined {
  for (const [column, code] of columns) {
    // Rows are JSON objects or arrays here (checked with the shape, nothing revived yet), and
    // the column is a safe key or an index: only its presence in each row is left to check.
    const byIndex = typeof column === 'number';
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as Record<string | number, unknown>;
      const present = Array.isArray(row)
        ? byIndex && (column as number) < row.length
        : !byIndex && hasOwn(row, column);
      if (!present) return 'a column rule names a column a row lacks';
      const v = row[column];
      if (v === null) continue;
      if (code === 'D' && isEpochMs(v)) row[column] = new Date(v);
      else if (code === 'B' && typeof v === 'string') row[column] = Buffer.from(v, 'base64');
      else return 'a value does not fit its column rule';
    }
  }
  return undefined;
}

function reviveSpecials(rows: unknown[], specials: readonly Special[]): string | undefined {
  for (const special of specials) {
    const last = special.length - 1;
    // special[2] is 'rows' (checked with the shape); the path goes on from there.
    let holder: unknown = rows;
    for (let i = 3; i < last; i++) {
      const segment = special[i]!;
      if (!hasSlot(holder, segment)) return 'a special value has a path that leads nowhere';
      holder = (holder as Record<string | number, unknown>)[segment];
    }
    const slot = special[last]!;
    if (!hasSlot(holder, slot)) return 'a special value has a path that leads nowhere';
    const target = holder as Record<string | number, unknown>;
    // The encoder leaves null in the place of each special value; anything else was not its.
    if (target[slot] !== null) return 'a special value would replace data';
    target[slot] = reviveOne(special[0], special[1]);
  }
  return undefined;
}

/** A special value from its code and data (both checked with the shape). */
function reviveOne(code: SpecialCode, data: string | number | null): unknown {
  switch (code) {
    case 'D':
      return new Date(data === null ? Number.NaN : (data as number));
    case 'B':
      return Buffer.from(data as string, 'base64');
    case 'I':
      return BigInt(data as string);
    case 'U':
      return undefined;
    default:
      return data === '-0' ? -0 : Number(data);
  }
}
