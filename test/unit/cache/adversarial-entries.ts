/**
 * Cache entries an attacker (or a truncated write, or another program) could leave in the store,
 * for the codec's own tests and for the cache's tests over MemoryStore and the real Redis. Each
 * is derived from a valid entry of the given key, so the only thing wrong with it is what its
 * name says.
 */
import { encodeEntry } from '../../../src/cache/codec.js';
import type { QueryResultLike } from '../../../src/pg-like.js';

/** The result the valid entry holds: a Date column (a column rule) and specials in the rows. */
export function baseResult(): QueryResultLike {
  return {
    command: 'SELECT',
    rowCount: 2,
    oid: null,
    fields: [
      { name: 'id', dataTypeID: 23, format: 'text' },
      { name: 'at', dataTypeID: 1184, format: 'text' },
      { name: 'mixed', dataTypeID: 25, format: 'text' },
      { name: 'doc', dataTypeID: 3802, format: 'text' },
    ],
    rows: [
      { id: 1, at: new Date(1_000), mixed: new Date(2_000), doc: { a: [1, 2], b: null } },
      { id: 2, at: null, mixed: 10n, doc: { a: [], b: 'x' } },
    ],
  } as unknown as QueryResultLike;
}

/** The parsed JSON of an entry, loosely typed so that a test can break any part of it. */
export interface RawEntry {
  [key: string]: unknown;
  p: {
    [key: string]: unknown;
    rows: Array<Record<string, unknown>>;
    fields: Array<Record<string, unknown>>;
  };
  s: unknown[][];
  c: unknown[][];
}

/** The valid entry of `key`, fresh for `ttl` ms from now. */
export function validEntry(key: string, ttl = 60_000): string {
  return encodeEntry(key, baseResult(), Date.now() + ttl);
}

type Tamper = (key: string) => string;

const edit =
  (change: (e: RawEntry) => void): Tamper =>
  (key) => {
    const e = JSON.parse(validEntry(key)) as RawEntry;
    change(e);
    return JSON.stringify(e);
  };

const text =
  (change: (t: string) => string): Tamper =>
  (key) => {
    const before = validEntry(key);
    const after = change(before);
    if (after === before) throw new Error('the tampering changed nothing');
    return after;
  };

/** A special value placed by the attacker: `[code, data, ...path]`. */
const special = (...s: unknown[]) => edit((e) => e.s.push(s));

/**
 * Attempts to set a property on a prototype (Object.prototype, or the prototype of rows) through
 * the revival of special values or column rules. After decoding any of them,
 * `({}).polluted === undefined` must hold.
 */
export const POLLUTION: Array<[string, Tamper]> = [
  // The shape of the original attack: a special path straight through __proto__.
  ['a special at __proto__.polluted', special('B', 'aGk=', '__proto__', 'polluted')],
  ['a special at rows.__proto__.polluted', special('D', 0, 'rows', '__proto__', 'polluted')],
  ['a special at rows[0].__proto__.polluted', special('D', 0, 'rows', 0, '__proto__', 'polluted')],
  ['a special at rows[0].__proto__', special('U', null, 'rows', 0, '__proto__')],
  [
    'a special through constructor.prototype',
    special('N', 'NaN', 'rows', 0, 'constructor', 'prototype', 'polluted'),
  ],
  ['a special through doc.__proto__', special('I', '1', 'rows', 0, 'doc', '__proto__', 'polluted')],
  ['a special at rows[0].doc.a.__proto__', special('D', 0, 'rows', 0, 'doc', 'a', '__proto__')],
  [
    'a special through an own __proto__ of a jsonb',
    edit((e) => {
      e.p.rows[0]!.doc = JSON.parse('{"__proto__": {"polluted": null}, "a": [1, 2]}');
      e.s.push(['D', 0, 'rows', 0, 'doc', '__proto__', 'polluted']);
    }),
  ],
  ['a column rule on __proto__', edit((e) => e.c.push(['__proto__', 'D']))],
  ['a column rule on constructor', edit((e) => e.c.push(['constructor', 'B']))],
  [
    'a row with an own __proto__',
    text((t) => t.replace('{"id":1,', '{"__proto__":{"polluted":true},"id":1,')),
  ],
  [
    'a result with an own __proto__',
    text((t) => t.replace('"p":{', '"p":{"__proto__":{"polluted":true},')),
  ],
  [
    'an envelope with an own __proto__',
    text((t) => t.replace(/^\{/, '{"__proto__":{"polluted":true},')),
  ],
  [
    'a field with an own __proto__',
    text((t) => t.replace('{"name":"id",', '{"__proto__":{"polluted":true},"name":"id",')),
  ],
];

/** Entries of the wrong shape in any part: each must be refused as corrupt. */
export const MALFORMED: Array<[string, Tamper]> = [
  ['an empty value', () => ''],
  ['a value that is not JSON', () => 'OK'],
  ['truncated JSON', text((t) => t.slice(0, Math.floor(t.length / 2)))],
  ['JSON missing its last brace', text((t) => t.slice(0, -1))],
  ['a JSON number', () => '17'],
  ['a JSON string', () => '"rp:entry"'],
  ['JSON null', () => 'null'],
  ['a JSON array', () => '[1,"k",0]'],
  // The envelope.
  ['no key', edit((e) => delete e.k)],
  ['a key that is not a string', edit((e) => (e.k = 42))],
  ['no format', edit((e) => delete e.v)],
  ['a format that is a string', edit((e) => (e.v = '1'))],
  ['no freshness', edit((e) => delete e.f)],
  ['a freshness that is a string', edit((e) => (e.f = String(Date.now() + 60_000)))],
  ['a negative freshness', edit((e) => (e.f = -1))],
  ['a fractional freshness', edit((e) => (e.f = Date.now() + 0.5))],
  ['a huge freshness', edit((e) => (e.f = 1e300))],
  ['an unknown envelope property', edit((e) => (e.extra = 1))],
  [
    'no result',
    edit((e) => {
      const entry: Record<string, unknown> = e;
      delete entry.p;
    }),
  ],
  ['a result that is null', edit((e) => (e.p = null as never))],
  ['a result that is an array', edit((e) => (e.p = [] as never))],
  ['a result that is a string', edit((e) => (e.p = 'rows' as never))],
  // The result.
  [
    'no rows',
    edit((e) => {
      const result: Record<string, unknown> = e.p;
      delete result.rows;
    }),
  ],
  ['rows that are a string', edit((e) => (e.p.rows = 'x' as never))],
  ['rows that are an object', edit((e) => (e.p.rows = {} as never))],
  ['rows that are null', edit((e) => (e.p.rows = null as never))],
  ['a row that is a number', edit((e) => (e.p.rows[1] = 5 as never))],
  ['a row that is null', edit((e) => (e.p.rows[1] = null as never))],
  ['a row that is a string', edit((e) => (e.p.rows[1] = 'row' as never))],
  ['a rowCount that is a string', edit((e) => (e.p.rowCount = '2'))],
  ['a negative rowCount', edit((e) => (e.p.rowCount = -1))],
  ['a fractional rowCount', edit((e) => (e.p.rowCount = 1.5))],
  ['a huge rowCount', edit((e) => (e.p.rowCount = 1e300))],
  ['a rowCount above its rows', edit((e) => (e.p.rowCount = 3))],
  ['a rowCount that is a boolean', edit((e) => (e.p.rowCount = true))],
  ['a command that is a number', edit((e) => (e.p.command = 1))],
  ['a command that is an object', edit((e) => (e.p.command = { toString: 'x' }))],
  ['an oid that is negative', edit((e) => (e.p.oid = -1))],
  ['an oid that is too big', edit((e) => (e.p.oid = 2 ** 32))],
  ['an oid that is a string', edit((e) => (e.p.oid = '1'))],
  ['fields that are a string', edit((e) => (e.p.fields = 'x' as never))],
  ['fields that are an object', edit((e) => (e.p.fields = {} as never))],
  ['a field that is a number', edit((e) => (e.p.fields[0] = 1 as never))],
  ['a field that is null', edit((e) => (e.p.fields[0] = null as never))],
  ['a field without a name', edit((e) => delete e.p.fields[0]!.name)],
  ['a field whose name is a number', edit((e) => (e.p.fields[0]!.name = 1))],
  ['a field with an object value', edit((e) => (e.p.fields[0]!.dataTypeID = { a: 1 }))],
  ['a field with an array value', edit((e) => (e.p.fields[0]!.format = ['text']))],
  ['an unknown result property', edit((e) => (e.p._parsers = []))],
  [
    'a result with a then',
    // biome-ignore lint/suspicious/noThenProperty: the point: a result must never be a thenable
    edit((e) => (e.p.then = 1)),
  ],
  // Column rules.
  ['column rules that are an object', edit((e) => (e.c = {} as never))],
  ['a column rule that is a string', edit((e) => e.c.push('at' as never))],
  ['a column rule of three', edit((e) => e.c.push(['at', 'D', 'x']))],
  ['a column rule with an unknown code', edit((e) => (e.c[0]![1] = 'X'))],
  ['a column rule on a missing column', edit((e) => (e.c[0]![0] = 'nope'))],
  ['a column rule by index on object rows', edit((e) => (e.c[0]![0] = 0))],
  ['a column rule with a negative index', edit((e) => (e.c[0]![0] = -1))],
  ['a column rule on prototype', edit((e) => (e.c[0]![0] = 'prototype'))],
  ['a Date column holding a string', edit((e) => (e.p.rows[0]!.at = 'yesterday'))],
  ['a Date column out of range', edit((e) => (e.p.rows[0]!.at = 1e300))],
  ['a Date column holding an object', edit((e) => (e.p.rows[0]!.at = { valueOf: 1 }))],
  ['a Buffer rule on a number column', edit((e) => e.c.push(['id', 'B']))],
  // Special values.
  ['specials that are an object', edit((e) => (e.s = {} as never))],
  ['a special that is a string', edit((e) => e.s.push('D' as never))],
  ['a special with no path', special('D', 0)],
  ['a special with a path of one', special('D', 0, 'rows')],
  ['a special outside the rows', special('D', 0, 'fields', 0, 'name')],
  [
    'a special on the command',
    edit((e) => {
      e.p.command = null;
      e.s.push(['U', null, 'command']);
    }),
  ],
  ['a special with an unknown code', special('X', 0, 'rows', 1, 'at')],
  ['a Date special with text', special('D', 'now', 'rows', 1, 'at')],
  ['a Date special out of range', special('D', 1e300, 'rows', 1, 'at')],
  ['a Buffer special with a number', special('B', 1, 'rows', 1, 'at')],
  ['a bigint special in hex', special('I', '0x10', 'rows', 1, 'at')],
  ['a bigint special with spaces', special('I', ' 1 ', 'rows', 1, 'at')],
  ['a bigint special that is empty', special('I', '', 'rows', 1, 'at')],
  ['a bigint special in exponent form', special('I', '1e3', 'rows', 1, 'at')],
  ['an undefined special with data', special('U', 1, 'rows', 1, 'at')],
  ['a number special of another kind', special('N', '42', 'rows', 1, 'at')],
  ['a special past the last row', special('U', null, 'rows', 2, 'at')],
  ['a special at a negative row', special('U', null, 'rows', -1, 'at')],
  ['a special at a fractional row', special('U', null, 'rows', 0.5, 'at')],
  ['a special at a missing column', special('U', null, 'rows', 1, 'nope')],
  ['a special by name in an array', special('U', null, 'rows', 0, 'doc', 'a', 'length')],
  ['a special by index in an object', special('U', null, 'rows', 0, 0)],
  ['a special with a null segment', special('U', null, 'rows', 0, null)],
  ['a special with an object segment', special('U', null, 'rows', 0, {})],
  ['a special over data', special('U', null, 'rows', 0, 'id')],
  ['a special at a value already revived', edit((e) => e.s.push([...e.s[0]!]))],
  ['a special inside a revived Date', edit((e) => e.s.push(['U', null, ...e.s[0]!.slice(2), 'x']))],
  ['a special inside a rule column', special('U', null, 'rows', 0, 'at', 'x')],
];
