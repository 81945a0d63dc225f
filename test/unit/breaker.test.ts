import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EndpointBreaker } from '../../src/endpoint/breaker.js';
import { AcquireTimeoutError } from '../../src/errors.js';
import type { BreakerState } from '../../src/telemetry/events.js';
import { pgError, socketError } from '../support/fake-pool.js';

const options = {
  enabled: true,
  errorThresholdPercentage: 50,
  volumeThreshold: 4,
  consecutiveFailures: 0,
  resetTimeout: 1_000,
  rollingCountTimeout: 10_000,
  rollingCountBuckets: 10,
};

function setup(overrides: Partial<typeof options> = {}) {
  const changes: Array<[BreakerState, BreakerState]> = [];
  const breaker = new EndpointBreaker('primary', { ...options, ...overrides }, (s, p) =>
    changes.push([s, p]),
  );
  const run = (outcome: () => Promise<unknown>) =>
    breaker.run(null, outcome, undefined, undefined).catch((e: unknown) => e);
  return { breaker, changes, run };
}

describe('EndpointBreaker', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('opens on health failures past the threshold once volume is reached', async () => {
    const { breaker, changes, run } = setup();
    for (let i = 0; i < 3; i++) await run(() => Promise.reject(socketError()));
    expect(breaker.state).toBe('closed'); // below volumeThreshold
    await run(() => Promise.reject(socketError()));
    expect(breaker.state).toBe('open');
    expect(breaker.admits).toBe(false);
    expect(changes).toEqual([['open', 'closed']]);
    breaker.shutdown();
  });

  it('does not count SQL errors, conflicts or statement timeouts', async () => {
    const { breaker, run } = setup({ volumeThreshold: 1 });
    for (const code of ['23505', '42P01', '40001', '57014', '25006']) {
      const err = await run(() => Promise.reject(pgError(code)));
      expect((err as { code: string }).code).toBe(code); // reaches the caller unchanged
    }
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });

  it('counts acquire timeouts recorded from outside run()', async () => {
    const { breaker } = setup({ volumeThreshold: 2 });
    breaker.recordFailure(new AcquireTimeoutError('primary', 10));
    breaker.recordFailure(new AcquireTimeoutError('primary', 10));
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('half-opens after resetTimeout, admits one probe, closes on its success', async () => {
    const { breaker, changes, run } = setup({ volumeThreshold: 1 });
    await run(() => Promise.reject(socketError()));
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(breaker.state).toBe('half-open');
    expect(breaker.admits).toBe(true);
    let finishProbe: (v: unknown) => void = () => {};
    const probe = run(() => new Promise((resolve) => (finishProbe = resolve)));
    // While the probe is out, nobody else is admitted.
    expect(breaker.admits).toBe(false);
    finishProbe('ok');
    await probe;
    expect(breaker.state).toBe('closed');
    expect(changes.map(([s]) => s)).toEqual(['open', 'half-open', 'closed']);
    breaker.shutdown();
  });

  it('re-opens when the half-open probe fails', async () => {
    const { breaker, run } = setup({ volumeThreshold: 1 });
    await run(() => Promise.reject(socketError()));
    await vi.advanceTimersByTimeAsync(1_000);
    await run(() => Promise.reject(socketError('ECONNRESET')));
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('opens on consecutive failures after a long run of successes', async () => {
    const { breaker, run } = setup({ consecutiveFailures: 3 });
    for (let i = 0; i < 100; i++) await run(() => Promise.resolve('ok'));
    await run(() => Promise.reject(socketError()));
    await run(() => Promise.reject(socketError()));
    // A SQL error means the server answered: the streak starts again.
    await run(() => Promise.reject(pgError('23505')));
    await run(() => Promise.reject(socketError()));
    await run(() => Promise.reject(socketError()));
    expect(breaker.state).toBe('closed');
    await run(() => Promise.reject(socketError()));
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('enabled: false never opens', async () => {
    const { breaker, run } = setup({ enabled: false, volumeThreshold: 1, consecutiveFailures: 1 });
    for (let i = 0; i < 5; i++) await run(() => Promise.reject(socketError()));
    expect(breaker.admits).toBe(true);
    breaker.shutdown();
  });

  it('builds stackless CircuitOpenErrors naming the endpoint', () => {
    const { breaker } = setup();
    const err = breaker.openError();
    expect(err.code).toBe('E_CIRCUIT_OPEN');
    expect(err.endpoint).toBe('primary');
    breaker.shutdown();
  });

  it('shutdown leaves no timer behind', async () => {
    const { breaker, run } = setup({ volumeThreshold: 1 });
    await run(() => Promise.reject(socketError()));
    breaker.shutdown();
    expect(vi.getTimerCount()).toBe(0);
  });
});
