import { describe, expect, it } from 'vitest';
import {
  decodeEntry,
  EntryIntegrityError,
  encodeEntry,
  encodeValuesForKey,
} from '../../../src/cache/codec.js';
import { pgResult } from './helpers.js';

const KEY = 'rp:~:abc';

function roundTrip(rows: Array<Record<string, unknown>>) {
  const result = pgResult(rows);
  const decoded = decodeEntry(encodeEntry(KEY, result, 123), KEY);
  expect(decoded?.freshUntil).toBe(123);
  return { result, decoded: decoded!.result };
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
    const decoded = decodeEntry(encodeEntry(KEY, result, 0), KEY)!.result;
    expect(decoded.rows).toStrictEqual(rows);
    expect(decoded.fields).toStrictEqual(result.fields);
    expect(decoded.command).toBe('SELECT');
    expect(decoded.rowCount).toBe(50);
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
    const a = decodeEntry(text, KEY)!.result;
    const b = decodeEntry(text, KEY)!.result;
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

  it('refuses the entry of another key, and text that is not an entry', () => {
    const text = encodeEntry('rp:~:other', pgResult([{ a: 1 }]), 0);
    expect(() => decodeEntry(text, KEY)).toThrow(EntryIntegrityError);
    expect(() => decodeEntry('OK', KEY)).toThrow(EntryIntegrityError);
    expect(() => decodeEntry('17', KEY)).toThrow(EntryIntegrityError);
    expect(() => decodeEntry(JSON.stringify({ v: 1, k: KEY, f: 0, p: {} }), KEY)).toThrow(
      EntryIntegrityError,
    );
  });

  it('treats an entry of another format as absent', () => {
    expect(decodeEntry(JSON.stringify({ v: 99, k: KEY }), KEY)).toBeUndefined();
  });
});

describe('codec: parameters for keys', () => {
  it('tells apart values that JSON alone would confuse', () => {
    const distinct: unknown[][] = [
      [1],
      ['1'],
      [null],
      [undefined],
      [new Date(0)],
      [new Date(1)],
      ['1970-01-01T00:00:00.000Z'],
      [Buffer.from('a')],
      [Buffer.from('b')],
      [1n],
      [Number.NaN],
      [-0],
      [0],
      [[1, 2]],
      ['1,2'],
      [{ a: 1 }],
      [true],
      ['true'],
    ];
    const encoded = distinct.map((v) => encodeValuesForKey(v));
    expect(new Set(encoded).size).toBe(distinct.length);
  });

  it('treats no values and an empty array alike', () => {
    expect(encodeValuesForKey(undefined)).toBe(encodeValuesForKey([]));
  });
});
