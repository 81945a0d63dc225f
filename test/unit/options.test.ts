import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { DEFAULTS } from '../../src/options/defaults.js';
import { resolveOptions } from '../../src/options/pool.js';
import { FakePool } from '../support/fake-pool.js';

function problemsOf(input: unknown): readonly string[] {
  try {
    resolveOptions(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveOptions', () => {
  it('fills defaults and names endpoints', () => {
    const primary = new FakePool('p', 20);
    const r1 = new FakePool('r1');
    const r2 = new FakePool('r2');
    const resolved = resolveOptions({
      primary,
      replicas: [r1, { pool: r2, name: 'eu', weight: 3 }],
    });
    expect(resolved.primary).toMatchObject({ name: 'primary', maxConcurrent: 20, weight: 1 });
    expect(resolved.replicas.map((r) => [r.name, r.weight, r.maxConcurrent])).toEqual([
      ['replica-1', 1, 10],
      ['eu', 3, 10],
    ]);
    expect(resolved.breaker).toEqual(DEFAULTS.breaker);
    expect(resolved.retry).toEqual(DEFAULTS.retry);
    expect(resolved.queue).toEqual(DEFAULTS.queue);
    expect(resolved.routing).toEqual(DEFAULTS.routing);
    expect(resolved.ownsPools).toBe(true);
  });

  it('treats an option given as undefined as left out', () => {
    const resolved = resolveOptions({
      primary: new FakePool(),
      retry: { retries: undefined },
      queue: { maxWaiting: undefined, acquireTimeout: undefined },
      routing: { balancer: undefined },
    });
    expect(resolved.retry.retries).toBe(DEFAULTS.retry.retries);
    expect(resolved.queue).toEqual(DEFAULTS.queue);
    expect(resolved.routing.balancer).toBe(DEFAULTS.routing.balancer);
  });

  it('refuses timer values Node cannot honour', () => {
    expect(problemsOf({ primary: new FakePool(), queue: { acquireTimeout: 2 ** 31 } })).toEqual([
      expect.stringMatching(/^queue\.acquireTimeout: must be an integer from 1 to 2147483647/),
    ]);
  });

  it('keeps a deliberate 0 (?? not ||)', () => {
    const resolved = resolveOptions({
      primary: new FakePool(),
      retry: { retries: 0, minTimeout: 0 },
      queue: { maxWaiting: 0 },
      breaker: { volumeThreshold: 0 },
    });
    expect(resolved.retry.retries).toBe(0);
    expect(resolved.retry.minTimeout).toBe(0);
    expect(resolved.queue.maxWaiting).toBe(0);
    expect(resolved.breaker.volumeThreshold).toBe(0);
  });

  it('lists every problem at once, including unknown keys at every level', () => {
    const problems = problemsOf({
      primary: new FakePool(),
      replica: [],
      breaker: { errorThresholdPercentage: 150, resetTimout: 5 },
      retry: { retries: -1, factor: 'two', minTimeout: 10, maxTimeout: 5 },
      queue: { maxWaiting: 1.5, acquireTimeout: 0, maxQueueDelayMs: -5 },
      routing: { balancer: 'fastest', queryRouting: 'always', fallbackToPrimary: 'yes' },
      logger: { info() {} },
      ownsPools: 1,
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^replica: unknown option/),
        expect.stringMatching(
          /^breaker\.errorThresholdPercentage: must be a finite number from 0 to 100, got 150/,
        ),
        expect.stringMatching(/^breaker\.resetTimout: unknown option/),
        expect.stringMatching(/^retry\.retries: must be an integer from 0 to 100, got -1/),
        expect.stringMatching(/^retry\.factor: .*got 'two'/),
        expect.stringMatching(/^retry\.minTimeout \(10\) must not exceed retry\.maxTimeout \(5\)/),
        expect.stringMatching(/^queue\.maxWaiting: must be an integer/),
        expect.stringMatching(
          /^queue\.acquireTimeout: must be an integer from 1 to 2147483647, got 0/,
        ),
        expect.stringMatching(
          /^queue\.maxQueueDelayMs: must be an integer from 0 to 2147483647, got -5/,
        ),
        expect.stringMatching(
          /^routing\.balancer: must be one of 'round-robin', 'random', 'least-busy', 'weighted', got 'fastest'/,
        ),
        expect.stringMatching(/^routing\.queryRouting: must be one of 'primary', 'auto'/),
        expect.stringMatching(/^routing\.fallbackToPrimary: must be true or false/),
        expect.stringMatching(/^logger: must be a pino-compatible logger/),
        expect.stringMatching(/^ownsPools: must be true or false/),
      ]),
    );
    expect(problems).toHaveLength(14);
  });

  it('requires a primary and checks endpoints', () => {
    expect(problemsOf({})).toEqual(['primary: is required']);
    expect(problemsOf(undefined)).toEqual([expect.stringMatching(/^options: must be an object/)]);
    const pool = new FakePool();
    const problems = problemsOf({
      primary: { pool: {}, nam: 'x' },
      replicas: [{ pool, name: '', weight: 0 }, 42, { pool, name: 'primary' }],
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^primary\.nam: unknown option/),
        expect.stringMatching(/^primary\.pool: must be a pg\.Pool-like object/),
        expect.stringMatching(/^replicas\[0\]\.name: must be a non-empty string/),
        expect.stringMatching(/^replicas\[0\]\.weight: must be an integer from 1 up, got 0/),
        expect.stringMatching(/^replicas\[1\]: must be a pg\.Pool or/),
        'the same pool object is given for two endpoints',
      ]),
    );
    expect(
      problemsOf({
        primary: new FakePool(),
        replicas: [{ pool: new FakePool(), name: 'primary' }],
      }),
    ).toEqual(['endpoint names must be unique: "primary" repeats']);
  });

  it('checks that rolling buckets divide the window', () => {
    expect(
      problemsOf({
        primary: new FakePool(),
        breaker: { rollingCountTimeout: 1000, rollingCountBuckets: 3 },
      }),
    ).toEqual([expect.stringMatching(/divisible/)]);
  });

  it('never puts a connection string in a problem', () => {
    const pool = Object.assign(new FakePool(), {
      options: { max: 5, connectionString: 'postgres://u:s3cret@h/db' },
    });
    const problems = problemsOf({ primary: pool, queue: { maxWaiting: -1 } });
    expect(problems.join('\n')).not.toContain('s3cret');
  });
});
