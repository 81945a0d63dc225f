import { describe, expect, it } from 'vitest';
import {
  type DecodedEntry,
  decodeEntry,
  type EntryRejection,
  encodeEntry,
  isDecoded,
} from '../../../src/cache/codec.js';
import { pgResult } from './helpers.js';

const KEY = 'rp:~:abc';

/** The decoded entry, failing the test on a rejection. */
function decoded(text: string, key = KEY): DecodedEntry {
  const entry = decodeEntry(text, key);
  if (!isDecoded(entry)) throw new Error(`rejected: ${entry.rejected} (${entry.reason})`);
  return entry;
}

function roundTrip(rows: Array<Record<string, unknown>>) {
  const result = pgResult(rows);
  const entry = decoded(encodeEntry(KEY, result, 123));
  expect(entry.freshUntil).toBe(123);
  return { result, decoded: entry.result };
}

function rejection(text: string): EntryRejection['rejected'] | 'decoded' {
  const entry = decodeEntry(text, KEY);
  return isDecoded(entry) ? 'decoded' : entry.rejected;
}

describe('codec: a result comes back as pg returned it', () => {
  const cases: Array<[string, unknown]> = [
    ['text', 'hé "quoted" \\ \n 😀'],
    ['empty string', ''],
    ['int4', 42],
    ['float8', 0.1 + 0.2],
    ['negative zero', -0],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['int8 as pg gives it (string)', '9223372036854775807'],
    ['numeric as pg gives it (string)', '12345678901234567890.000000001'],
    ['bigint from a custom parser', 9223372036854775807n],
    ['boolean true', true],
    ['boolean false', false],
    ['null', null],
    ['timestamptz', new Date('2024-02-29T12:34:56.789Z')],
    ['date before 1970', new Date('1901-01-01T00:00:00.000Z')],
    ['invalid date', new Date(Number.NaN)],
    ['bytea', Buffer.from([0, 1, 2, 254, 255])],
    ['empty bytea', Buffer.alloc(0)],
    ['jsonb object', { a: 1, b: [true, null, 'x'], c: { d: { e: [] } } }],
    ['jsonb array', [1, 'two', { three: 3 }, [4]]],
    ['jsonb that looks like a tag', { $date: 1, D: 'x', s: [['D', 1, 'rows']] }],
    ['int4[]', [1, 2, null, 4]],
    ['timestamptz[]', [new Date(0), new Date('2030-01-01T00:00:00Z'), null]],
    [
      'text[][]',
      [
        ['a', 'b'],
        ['c', null],
      ],
    ],
    ['bytea[]', [Buffer.from('hi'), null]],
    ['undefined in an array', [1, undefined, 3]],
  ];

  for (const [name, value] of cases) {
    it(`round-trips ${name}`, () => {
      const { result, decoded } = roundTrip([{ v: value, id: 1 }]);
      expect(decoded.rows).toStrictEqual(result.rows);
      expect(decoded).toEqual(result);
      if (value instanceof Date) expect(decoded.rows[0]!.v).toBeInstanceOf(Date);
      if (Buffer.isBuffer(value)) expect(Buffer.isBuffer(decoded.rows[0]!.v)).toBe(true);
    });
  }

  it('round-trips rowMode array rows, many rows and fields', () => {
    const rows = Array.from({ length: 50 }, (_, i) => [i, `n${i}`, new Date(i * 1000), null]);
    const result = { ...pgResult([{ a: 1, b: 1, c: 1, d: 1 }]), rows, rowCount: 50 };
    const back = decoded(encodeEntry(KEY, result, 0)).result;
    expect(back.rows).toStrictEqual(rows);
    expect(back.fields).toStrictEqual(result.fields);
    expect(back.command).toBe('SELECT');
    expect(back.rowCount).toBe(50);
  });

  it('turns class instances into their data (interval), as JSON.stringify would', () => {
    class Interval {
      hours = 1;
      minutes = 30;
      toPostgres() {
        return '1 hour 30 minutes';
      }
    }
    class Decimal {
      constructor(private readonly digits: string) {}
      toJSON() {
        return this.digits;
      }
    }
    const { decoded } = roundTrip([{ i: new Interval(), d: new Decimal('1.50') }]);
    expect(decoded.rows[0]).toStrictEqual({ i: { hours: 1, minutes: 30 }, d: '1.50' });
  });

  it('gives a fresh object on every decode', () => {
    const text = encodeEntry(KEY, pgResult([{ d: new Date(0) }]), 0);
    const a = decoded(text).result;
    const b = decoded(text).result;
    expect(a).not.toBe(b);
    expect(a.rows[0]).not.toBe(b.rows[0]);
    expect(a.rows[0]!.d).not.toBe(b.rows[0]!.d);
  });

  it('does not touch the result it encodes', () => {
    const make = () => pgResult([{ d: new Date(5), b: Buffer.from('x'), n: [Number.NaN] }]);
    const result = make();
    encodeEntry(KEY, result, 0);
    expect(result).toStrictEqual(make());
  });

  it('keeps a jsonb key __proto__ as the own property pg gives, without touching prototypes', () => {
    const jsonb = JSON.parse('{"__proto__": {"polluted": true}, "a": [1, {"__proto__": 2}]}');
    const { result, decoded: back } = roundTrip([{ doc: jsonb, at: new Date(3) }]);
    expect(back.rows).toStrictEqual(result.rows);
    const doc = back.rows[0]!.doc as Record<string, unknown>;
    expect(Object.hasOwn(doc, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(doc)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses the entry of another key as foreign, and text that is not an entry as corrupt', () => {
    const text = encodeEntry('rp:~:other', pgResult([{ a: 1 }]), 0);
    expect(rejection(text)).toBe('foreign');
    expect(rejection('OK')).toBe('corrupt');
    expect(rejection('17')).toBe('corrupt');
    expect(rejection(JSON.stringify({ v: 1, k: KEY, f: 0, p: {} }))).toBe('corrupt');
  });

  it('treats an entry of another format as absent', () => {
    expect(rejection(JSON.stringify({ v: 99, k: KEY }))).toBe('format');
  });

  it('does not write what it would refuse to read (the result is then not cached)', () => {
    const refused: Array<[string, object]> = [
      ['rows that are not objects', { ...pgResult([]), rows: [1, 2] }],
      ['a rowCount above its rows', { ...pgResult([{ a: 1 }]), rowCount: 2 }],
      ['a negative rowCount', { ...pgResult([{ a: 1 }]), rowCount: -1 }],
      ['a Date column named constructor', pgResult([{ constructor: new Date(1) }])],
      [
        'a special value in the fields',
        { ...pgResult([{ a: 1 }]), fields: [{ name: 'a', x: Number.NaN }] },
      ],
      ['fields that are not an array', { ...pgResult([{ a: 1 }]), fields: 'x' }],
    ];
    for (const [what, result] of refused) {
      expect(() => encodeEntry(KEY, result, 0), what).toThrow(/cannot be cached/);
    }
  });
});
