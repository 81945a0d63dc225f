/**
 * Serialisation of query results (and of parameters, for keys) as JSON plus a description of the
 * values JSON cannot carry: Date, Buffer (any ArrayBuffer view), bigint, undefined, NaN,
 * ±Infinity and -0. Decoding is one native `JSON.parse` and then a revival pass over exactly
 * those values, so a jsonb value that happens to look like a tag (`{"$date": ...}`) is never
 * mistaken for one.
 *
 * Two forms of description:
 * - column rules, for the common case of a column whose every value is a Date (or every value a
 *   Buffer), or null: the values are written inline (epoch ms, base64) and the rule says which
 *   column to revive, so the entry stays about as small and as fast to parse as the plain JSON;
 * - specials, for any other such value wherever it is (in a jsonb, an array, a mixed column):
 *   written as null, and listed as `[code, data, ...path]`.
 *
 * Class instances other than Date and Buffer (pg's interval type, say) become plain data as
 * JSON.stringify would make them: their `toJSON()` if they have one, else their own enumerable
 * properties.
 */
import type { QueryResultLike } from '../pg-like.js';

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

/** A stored entry that did not decode, or belongs to another key. */
export class EntryIntegrityError extends Error {
  override readonly name = 'EntryIntegrityError';
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
    out[key] = copy((value as Record<string, unknown>)[key], w);
    w.path.pop();
  }
  return out;
}

/**
 * Parameters as one string that differs whenever the values differ (as far as pg can see:
 * Dates by instant, Buffers by bytes, numbers apart from numeric strings). Used only as hash
 * input, never stored.
 */
export function encodeValuesForKey(values: readonly unknown[] | undefined): string {
  if (values === undefined || values.length === 0) return '[]';
  const w: Walk = { specials: [], path: [] };
  const json = JSON.stringify(copy(values, w));
  return w.specials.length === 0 ? json : `${json}\u0000${JSON.stringify(w.specials)}`;
}

/** The entry text for `result` under `key`, fresh until `freshUntil` (epoch ms). */
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
        copied[k] = inline.has(k) ? inlineValue(row[k]) : copy(row[k], w);
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
 * Decodes an entry read at `key`. Returns undefined for an entry of another format (written by
 * another version of this library: a miss, not a fault). Throws EntryIntegrityError when the text
 * is not an entry, or is the entry of another key (a reply that reached the wrong command).
 */
export function decodeEntry(text: string, key: string): DecodedEntry | undefined {
  let envelope: EntryEnvelope;
  try {
    envelope = JSON.parse(text) as EntryEnvelope;
  } catch {
    throw new EntryIntegrityError('the stored value is not a cache entry');
  }
  if (typeof envelope !== 'object' || envelope === null || envelope.k !== key) {
    throw new EntryIntegrityError('the stored value is not the entry of this key');
  }
  if (envelope.v !== ENTRY_FORMAT) return undefined;
  const { p: payload, f: freshUntil, s: specials, c: columns } = envelope;
  if (
    typeof payload !== 'object' ||
    payload === null ||
    !Array.isArray(payload.rows) ||
    typeof freshUntil !== 'number'
  ) {
    throw new EntryIntegrityError('the stored entry is malformed');
  }
  if (columns !== undefined) reviveColumns(payload.rows as unknown[], columns);
  if (specials !== undefined) revive(payload, specials);
  return { result: payload as unknown as QueryResultLike, freshUntil };
}

function reviveColumns(rows: readonly unknown[], columns: readonly ColumnRule[]): void {
  for (const [column, code] of columns) {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as Record<string | number, unknown>;
      const v = row[column];
      if (v === null) continue;
      if (code === 'D' && typeof v === 'number') row[column] = new Date(v);
      else if (code === 'B' && typeof v === 'string') row[column] = Buffer.from(v, 'base64');
      else throw new EntryIntegrityError('the stored entry is malformed');
    }
  }
}

function revive(root: Record<string, unknown>, specials: readonly Special[]): void {
  for (const special of specials) {
    const last = special.length - 1;
    let holder: unknown = root;
    for (let i = 2; i < last; i++)
      holder = (holder as Record<string | number, unknown>)[special[i]!];
    if (typeof holder !== 'object' || holder === null || last < 2) {
      throw new EntryIntegrityError('the stored entry is malformed');
    }
    (holder as Record<string | number, unknown>)[special[last]!] = reviveOne(
      special[0],
      special[1],
    );
  }
}

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
    case 'N':
      return data === '-0' ? -0 : Number(data);
    default:
      throw new EntryIntegrityError('the stored entry is malformed');
  }
}
