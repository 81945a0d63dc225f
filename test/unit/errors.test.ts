import { describe, expect, it } from 'vitest';
import {
  AcquireTimeoutError,
  CircuitOpenError,
  ConfigError,
  QueueFullError,
  ResilientPoolError,
  withoutStack,
} from '../../src/errors.js';

describe('errors', () => {
  it('carry code, endpoint, retryable and cause', () => {
    const cause = new Error('socket hang up');
    const err = new AcquireTimeoutError('replica-1', 2000, cause);
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(ResilientPoolError);
    expect(err).toBeInstanceOf(AcquireTimeoutError);
    expect(err).not.toBeInstanceOf(CircuitOpenError);
    expect(err.code).toBe('E_ACQUIRE_TIMEOUT');
    expect(err.endpoint).toBe('replica-1');
    expect(err.retryable).toBe(true);
    expect(err.cause).toBe(cause);
    expect(err.message).toContain('replica-1');
    expect(err.name).toBe('AcquireTimeoutError');
  });

  it('instanceof holds across two copies of the package (Symbol.for brand)', () => {
    // An error built by "another copy": same brand and code, different class identity.
    const foreign = Object.assign(new Error('x'), { code: 'E_CIRCUIT_OPEN' });
    Object.defineProperty(foreign, Symbol.for('resilient-pool.error'), { value: true });
    expect(foreign).toBeInstanceOf(ResilientPoolError);
    expect(foreign).toBeInstanceOf(CircuitOpenError);
    expect(foreign).not.toBeInstanceOf(QueueFullError);
    expect(Object.assign(new Error('x'), { code: 'E_CIRCUIT_OPEN' })).not.toBeInstanceOf(
      CircuitOpenError,
    );
  });

  it('ConfigError lists every problem', () => {
    const err = new ConfigError(['a: bad', 'b: worse']);
    expect(err.problems).toEqual(['a: bad', 'b: worse']);
    expect(err.message).toContain('a: bad');
    expect(err.message).toContain('b: worse');
    expect(err.code).toBe('E_CONFIG');
  });

  it('withoutStack builds an error with no stack frames and restores the limit', () => {
    const before = Error.stackTraceLimit;
    const err = withoutStack(() => new CircuitOpenError('primary'));
    expect(err.stack?.split('\n').length).toBe(1);
    expect(Error.stackTraceLimit).toBe(before);
  });
});
