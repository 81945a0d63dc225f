/**
 * The attribute values derived from a call: `db.operation.name` from the text's first keyword
 * (only a PostgreSQL command keyword, so nothing else of the text can get out) and `error.type`
 * from closed sets of codes and names (never a message).
 */
import { describe, expect, it } from 'vitest';
import {
  AcquireTimeoutError,
  CircuitOpenError,
  QueueFullError,
  TimeoutError,
} from '../../src/errors.js';
import {
  errorType,
  operationName,
  responseStatusCode,
  serverAttributes,
} from '../../src/telemetry/otel/attributes.js';

describe('operationName', () => {
  it.each([
    ['SELECT 1', 'SELECT'],
    ['select * from t', 'SELECT'],
    ['  \n\tInsert INTO t VALUES ($1)', 'INSERT'],
    ['-- a comment\nUPDATE t SET a = 1', 'UPDATE'],
    ['/* outer /* nested */ still comment */ DELETE FROM t', 'DELETE'],
    ['(SELECT 1) UNION (SELECT 2)', 'SELECT'],
    ['WITH x AS (SELECT 1) SELECT * FROM x', 'WITH'],
    ['CHECKPOINT', 'CHECKPOINT'],
    ['begin;', 'BEGIN'],
  ])('%j is %s', (text, expected) => {
    expect(operationName(text)).toBe(expected);
  });

  it.each([
    [undefined],
    [''],
    ['   '],
    ['-- only a comment'],
    ['/* unterminated'],
    ["'s3cr3t' SELECT"],
    ['hunter2 SELECT'],
    ['SELECTED'],
    ['select_all FROM t'],
    ['SELECT2'],
    ['x'.repeat(10_000)],
    ['123'],
  ])('%j has none', (text) => {
    expect(operationName(text)).toBeUndefined();
  });

  it('reads no further than the first word', () => {
    // A word longer than any command stops the scan at once.
    expect(operationName(`${'A'.repeat(11)} SELECT`)).toBeUndefined();
    expect(operationName('SELECTpassword')).toBeUndefined();
  });

  it('answers the same for a text seen before, long or short, past the memo bound', () => {
    const long = `SELECT ${'x, '.repeat(2_000)}1`;
    for (let round = 0; round < 2; round++) {
      expect(operationName('update t set a = 1')).toBe('UPDATE');
      expect(operationName('nope')).toBeUndefined();
      expect(operationName(long)).toBe('SELECT');
    }
    for (let i = 0; i < 600; i++) expect(operationName(`DELETE FROM t${i}`)).toBe('DELETE');
    expect(operationName('update t set a = 1')).toBe('UPDATE');
  });
});

describe('errorType', () => {
  it('is the code for codes of closed sets', () => {
    expect(errorType(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe('23505');
    expect(errorType(new CircuitOpenError('r1'))).toBe('E_CIRCUIT_OPEN');
    expect(errorType(new QueueFullError('r1', 200))).toBe('E_QUEUE_FULL');
    expect(errorType(new AcquireTimeoutError('r1', 2000))).toBe('E_ACQUIRE_TIMEOUT');
    expect(errorType(new TimeoutError(100))).toBe('E_TIMEOUT');
    expect(errorType(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
    expect(errorType(Object.assign(new Error('x'), { code: 'ERR_SOCKET_CLOSED' }))).toBe(
      'ERR_SOCKET_CLOSED',
    );
  });

  it('is a built-in name, else _OTHER, for anything else; never the message', () => {
    expect(errorType(new TypeError('s3cr3t'))).toBe('TypeError');
    expect(errorType(new Error('Connection terminated unexpectedly'))).toBe('Error');
    expect(errorType(Object.assign(new Error('x'), { code: 'password=s3cr3t' }))).toBe('Error');
    class AppError extends Error {
      override name = 'AppError s3cr3t';
    }
    expect(errorType(new AppError('x'))).toBe('_OTHER');
    expect(errorType('s3cr3t')).toBe('_OTHER');
    expect(errorType(undefined)).toBe('_OTHER');
    expect(errorType(null)).toBe('_OTHER');
  });

  it('gives db.response.status_code only for a SQLSTATE', () => {
    expect(responseStatusCode({ code: '40001' })).toBe('40001');
    expect(responseStatusCode(new CircuitOpenError('r1'))).toBeUndefined();
    expect(responseStatusCode(undefined)).toBeUndefined();
  });
});

describe('serverAttributes', () => {
  it('names the system and the endpoint server, leaving out what is unknown', () => {
    expect(
      serverAttributes({
        name: 'r1',
        role: 'replica',
        attributes: { 'server.address': '/var/run/postgresql', 'db.namespace': 'app' },
      }),
    ).toEqual({
      'db.system.name': 'postgresql',
      'db.namespace': 'app',
      'server.address': '/var/run/postgresql',
    });
  });
});
