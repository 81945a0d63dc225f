/**
 * A query parameter as node-postgres sends it. Cache keys are built from this, not from the
 * JavaScript value: two values pg sends alike (1 and '1', null and undefined) are one query to
 * the server, and two values it sends differently (objects whose `toPostgres()` differ, however
 * alike their fields) are two.
 *
 * pg's own `prepareValue` is used when pg can be loaded; it is called through the module on every
 * call, so a replacement installed on `pg/lib/utils` (pg documents it as overridable) is followed.
 * Otherwise {@link mirrorPrepareValue}, a copy of pg 8's, stands in (reading pg's defaults is then
 * impossible, so Dates are written in local time, pg's default for `parseInputDatesAsUTC`).
 */
import { types } from 'node:util';
import { pgUtils } from './pg-modules.js';

/** pg's prepareValue, or the mirror. Throws where pg would throw when binding the value. */
export function prepareValue(value: unknown): unknown {
  const utils = pgUtils();
  return utils === null ? mirrorPrepareValue(value) : utils.prepareValue(value);
}

/** A copy of pg 8's `prepareValue` (lib/utils.js), cycle guard included. */
export function mirrorPrepareValue(value: unknown): unknown {
  return prepare(value, undefined);
}

function prepare(value: unknown, seen: unknown[] | undefined): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object') {
    if (value instanceof Buffer) return value;
    if (ArrayBuffer.isView(value)) {
      return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
    if (types.isDate(value)) return dateToString(value as Date);
    if (Array.isArray(value)) return arrayString(value);
    return prepareObject(value, seen);
  }
  // Numbers, bigints, booleans, strings; symbols and functions too, as pg does.
  return (value as { toString(): string }).toString();
}

function prepareObject(value: object, seen: unknown[] | undefined): unknown {
  const toPostgres = (value as { toPostgres?: unknown }).toPostgres;
  if (typeof toPostgres === 'function') {
    seen = seen ?? [];
    if (seen.includes(value)) {
      throw new Error(`circular reference detected while preparing "${String(value)}" for query`);
    }
    seen.push(value);
    return prepare(toPostgres.call(value, mirrorPrepareValue), seen);
  }
  return JSON.stringify(value);
}

function escapeElement(element: unknown): string {
  // A non-string (a toPostgres that returned a Buffer or null) throws here, as it does in pg.
  const escaped = (element as string).replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  return `"${escaped}"`;
}

/** A JS array as a PostgreSQL array literal, as pg writes it. */
function arrayString(value: readonly unknown[]): string {
  let result = '{';
  for (let i = 0; i < value.length; i++) {
    if (i > 0) result += ',';
    let item = value[i];
    if (item === null || item === undefined) {
      result += 'NULL';
    } else if (Array.isArray(item)) {
      result += arrayString(item);
    } else if (ArrayBuffer.isView(item)) {
      if (!(item instanceof Buffer)) {
        item = Buffer.from(item.buffer, item.byteOffset, item.byteLength);
      }
      result += `\\\\x${(item as Buffer).toString('hex')}`;
    } else {
      result += escapeElement(mirrorPrepareValue(item));
    }
  }
  return `${result}}`;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** pg's dateToString: local time with its offset (pg's default, parseInputDatesAsUTC false). */
function dateToString(date: Date): string {
  let offset = -date.getTimezoneOffset();
  let year = date.getFullYear();
  const isBCYear = year < 1;
  // Negative years are one off their BC representation.
  if (isBCYear) year = Math.abs(year) + 1;
  let ret =
    `${pad(year, 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}`;
  if (offset < 0) {
    ret += '-';
    offset *= -1;
  } else {
    ret += '+';
  }
  ret += `${pad(Math.floor(offset / 60))}:${pad(offset % 60)}`;
  if (isBCYear) ret += ' BC';
  return ret;
}
