import { describe, expect, it } from 'vitest';
import { classify, isHealthFailure, isRetryable, isServerError } from '../../src/classify.js';
import {
  AbortedError,
  AcquireTimeoutError,
  CircuitOpenError,
  ConfigError,
  NoHealthyEndpointError,
  PoolClosedError,
  QueueFullError,
  TransactionOutcomeUnknownError,
} from '../../src/errors.js';
import { pgError, socketError } from '../support/fake-pool.js';

describe('classify', () => {
  it.each([
    ['08000', 'connection', true, true],
    ['08003', 'connection', true, true],
    ['08006', 'connection', true, true],
    ['08001', 'connection', true, true],
    ['08004', 'connection', true, true],
    ['08007', 'outcome-unknown', false, true],
    ['40003', 'outcome-unknown', false, true],
    ['57P01', 'connection', true, true],
    ['57P02', 'connection', true, true],
    ['57P03', 'connection', true, true],
    ['53300', 'resource', true, true],
    ['53100', 'resource', true, true],
    ['53200', 'resource', true, true],
    ['40001', 'conflict', true, false],
    ['40P01', 'conflict', true, false],
    ['55P03', 'conflict', true, false],
    ['25006', 'read-only', true, false],
    ['57014', 'timeout', false, false],
    ['23505', 'permanent', false, false],
    ['42P01', 'permanent', false, false],
    ['42601', 'permanent', false, false],
    ['22P02', 'permanent', false, false],
    ['XX000', 'permanent', false, false],
  ])('SQLSTATE %s is %s (retryable %s, health %s)', (code, errorClass, retryable, health) => {
    const err = pgError(code);
    expect(classify(err)).toBe(errorClass);
    expect(isRetryable(err)).toBe(retryable);
    expect(isHealthFailure(err)).toBe(health);
  });

  it('a stale named statement (26000, 0A000 cached plan) is its own class', () => {
    const missing = pgError('26000', 'prepared statement "s" does not exist');
    const stalePlan = pgError('0A000', 'cached plan must not change result type');
    for (const err of [missing, stalePlan]) {
      expect(classify(err)).toBe('stale-statement');
      // Prepared again it can succeed; the server answered, so its health is not in question.
      expect(isRetryable(err)).toBe(true);
      expect(isHealthFailure(err)).toBe(false);
    }
    // Any other feature_not_supported is permanent.
    const other = pgError('0A000', 'cannot use subquery in check constraint');
    expect(classify(other)).toBe('permanent');
    expect(isRetryable(other)).toBe(false);
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EAI_AGAIN'])(
    'socket error %s is a retryable connection failure',
    (code) => {
      const err = socketError(code);
      expect(classify(err)).toBe('connection');
      expect(isRetryable(err)).toBe(true);
      expect(isHealthFailure(err)).toBe(true);
    },
  );

  it.each([
    ['Connection terminated unexpectedly', 'connection'],
    ['Connection terminated due to connection timeout', 'connection'],
    ['Client has encountered a connection error and is not queryable', 'connection'],
    ['timeout exceeded when trying to connect', 'timeout'],
    ['Query read timeout', 'timeout'],
  ])('pg message "%s" is %s', (message, errorClass) => {
    const err = new Error(message);
    expect(classify(err)).toBe(errorClass);
    expect(isHealthFailure(err)).toBe(true);
  });

  it('classifies the library errors', () => {
    expect(classify(new CircuitOpenError('a'))).toBe('unavailable');
    expect(classify(new QueueFullError('a', 1))).toBe('unavailable');
    expect(classify(new NoHealthyEndpointError('read'))).toBe('unavailable');
    expect(classify(new AcquireTimeoutError('a', 1))).toBe('timeout');
    expect(classify(new TransactionOutcomeUnknownError('a'))).toBe('outcome-unknown');
    expect(classify(new AbortedError('a', undefined))).toBe('aborted');
    expect(classify(new PoolClosedError())).toBe('permanent');
    expect(classify(new ConfigError(['x']))).toBe('permanent');
    expect(isRetryable(new AcquireTimeoutError('a', 1))).toBe(true);
    expect(isRetryable(new PoolClosedError())).toBe(false);
    expect(isRetryable(new TransactionOutcomeUnknownError('a'))).toBe(false);
    // Refusals say nothing about the server's health; an acquire timeout does.
    expect(isHealthFailure(new CircuitOpenError('a'))).toBe(false);
    expect(isHealthFailure(new AcquireTimeoutError('a', 1))).toBe(true);
  });

  it('isServerError: an answer after which the connection is usable; not FATAL, not class 08', () => {
    const withSeverity = (code: string, severity: string, message = `pg error ${code}`) =>
      Object.assign(pgError(code, message), { severity });
    expect(isServerError(withSeverity('23505', 'ERROR'))).toBe(true);
    expect(
      isServerError(withSeverity('0A000', 'ERROR', 'cached plan must not change result type')),
    ).toBe(true);
    // PgBouncer's answers for a server it cannot reach, sent just before it closes the connection.
    expect(
      isServerError(
        withSeverity(
          '08P01',
          'FATAL',
          'server login has been failing, try again later (server_login_retry)',
        ),
      ),
    ).toBe(false);
    expect(isServerError(withSeverity('08P01', 'FATAL', 'query_wait_timeout'))).toBe(false);
    // A server shutting down; and the same with a translated severity.
    expect(isServerError(withSeverity('57P01', 'FATAL'))).toBe(false);
    expect(isServerError(withSeverity('57P01', 'ВАЖНО'))).toBe(false);
    expect(isServerError(withSeverity('XX000', 'PANIC'))).toBe(false);
    // Errors raised in the client have no severity.
    expect(isServerError(new Error('Connection terminated unexpectedly'))).toBe(false);
    expect(isServerError(socketError('ECONNRESET'))).toBe(false);
  });

  it('treats non-errors and plain errors as permanent', () => {
    expect(classify(undefined)).toBe('permanent');
    expect(classify('boom')).toBe('permanent');
    expect(classify(new Error('boom'))).toBe('permanent');
    expect(classify(new DOMException('aborted', 'AbortError'))).toBe('aborted');
  });
});
