/**
 * Parameters for keys are what pg sends: pg's own prepareValue when pg loads, else a mirror that
 * must agree with it on every value (and throw wherever it throws). Differential: the same inputs
 * through both.
 */
import { createRequire } from 'node:module';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mirrorPrepareValue, prepareValue } from '../../../src/cache/prepare-value.js';

const pgUtils = createRequire(import.meta.url)('pg/lib/utils.js') as {
  prepareValue(v: unknown): unknown;
};

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
  toPostgres() {
    return `(${this.x},${this.y})`;
  }
}

function circular() {
  const value: { toPostgres?: () => unknown } = {};
  value.toPostgres = () => value;
  return value;
}

const CASES: Array<[string, () => unknown]> = [
  ['null', () => null],
  ['undefined', () => undefined],
  ['a string', () => 'héllo "w" \\ 😀'],
  ['an empty string', () => ''],
  ['an integer', () => 42],
  ['a float', () => 0.1 + 0.2],
  ['NaN', () => Number.NaN],
  ['-0', () => -0],
  ['Infinity', () => Number.POSITIVE_INFINITY],
  ['a bigint', () => 9223372036854775807n],
  ['true', () => true],
  ['false', () => false],
  ['a Buffer', () => Buffer.from([0, 1, 255])],
  ['a Uint8Array', () => new Uint8Array([1, 2, 3])],
  ['a Float64Array', () => new Float64Array([1.5])],
  ['a DataView', () => new DataView(new ArrayBuffer(4))],
  ['a Date', () => new Date('2024-02-29T12:34:56.789Z')],
  ['a Date before 1970', () => new Date('1901-01-01T00:00:00.000Z')],
  ['a BC Date', () => new Date('-000042-03-04T05:06:07.008Z')],
  ['an array', () => [1, 'a', null, undefined, true]],
  ['a nested array', () => [[1, 2], ['a"b', 'c\\d'], []]],
  ['an array of Dates and Buffers', () => [new Date(0), Buffer.from('hi'), new Uint8Array([9])]],
  ['an array of objects', () => [{ a: 1 }, new Point(1, 2)]],
  ['an empty array', () => []],
  ['a plain object', () => ({ a: 1, b: [true, null], c: { d: 'e' } })],
  ['an object with toJSON', () => ({ toJSON: () => 'json!' })],
  ['an object whose toJSON is undefined', () => ({ toJSON: () => undefined })],
  ['an object with toPostgres', () => new Point(1, 2)],
  ['a toPostgres returning an object', () => ({ toPostgres: () => ({ nested: new Point(3, 4) }) })],
  [
    'a toPostgres using prepareValue',
    () => ({ toPostgres: (p: (v: unknown) => unknown) => p([1, 2]) }),
  ],
  ['a toPostgres returning a Buffer', () => ({ toPostgres: () => Buffer.from('x') })],
  ['a toPostgres returning null', () => ({ toPostgres: () => null })],
  ['a null-prototype object', () => Object.assign(Object.create(null), { a: 1 })],
  ['a symbol', () => Symbol('s')],
  // Values pg fails to send: both must throw.
  ['a BigInt inside JSON', () => ({ big: 1n })],
  ['a circular toPostgres', circular],
  [
    'a throwing toPostgres',
    () => ({
      toPostgres() {
        throw new Error('nope');
      },
    }),
  ],
  [
    'a circular object',
    () => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    },
  ],
  ['a Buffer from toPostgres inside an array', () => [{ toPostgres: () => Buffer.from('x') }]],
  ['null from toPostgres inside an array', () => [{ toPostgres: () => null }]],
];

type Outcome = { value: unknown } | { threw: string };

function outcome(prepare: (v: unknown) => unknown, make: () => unknown): Outcome {
  try {
    return { value: prepare(make()) };
  } catch (err) {
    return { threw: (err as Error).constructor.name };
  }
}

const ORIGINAL_TZ = process.env.TZ;

// Dates are written in local time: the mirror must agree in zones with negative, positive and
// half-hour offsets too (Node reads TZ again whenever it is set).
for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns']) {
  describe(`prepareValue for keys (TZ=${zone})`, () => {
    beforeAll(() => {
      process.env.TZ = zone;
    });
    afterAll(() => {
      if (ORIGINAL_TZ === undefined) delete process.env.TZ;
      else process.env.TZ = ORIGINAL_TZ;
    });

    for (const [name, make] of CASES) {
      it(`mirrors pg for ${name}`, () => {
        expect(outcome(mirrorPrepareValue, make)).toStrictEqual(
          outcome(pgUtils.prepareValue, make),
        );
      });
    }
  });
}

describe('prepareValue for keys, through pg', () => {
  afterEach(() => {
    pg.defaults.parseInputDatesAsUTC = false;
    if (ORIGINAL_TZ === undefined) delete process.env.TZ;
    else process.env.TZ = ORIGINAL_TZ;
  });

  it('uses pg’s own function, so pg.defaults.parseInputDatesAsUTC is followed', () => {
    process.env.TZ = 'America/New_York';
    const date = new Date('2024-02-29T12:34:56.789Z');
    expect(prepareValue(date)).toBe('2024-02-29T07:34:56.789-05:00');
    pg.defaults.parseInputDatesAsUTC = true;
    expect(prepareValue(date)).toBe('2024-02-29T12:34:56.789+00:00');
  });

  it('follows a replacement installed on pg/lib/utils (pg documents it as overridable)', () => {
    const original = pgUtils.prepareValue;
    pgUtils.prepareValue = (v) => `custom:${String(v)}`;
    try {
      expect(prepareValue(1)).toBe('custom:1');
    } finally {
      pgUtils.prepareValue = original;
    }
  });
});
