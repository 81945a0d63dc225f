import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EndpointBreaker } from '../../src/endpoint/endpoint-breaker.js';
import {
  AbortedError,
  AcquireTimeoutError,
  CircuitOpenError,
  TimeoutError,
} from '../../src/errors.js';
import { markNotSent } from '../../src/retry/policy.js';
import type { BreakerState } from '../../src/telemetry/events.js';
import { pgError, socketError } from '../support/fake-pool.js';

const options = {
  enabled: true,
  errorThresholdPercentage: 50,
  volumeThreshold: 4,
  consecutiveFailures: 0,
  resetTimeout: 1_000,
  slowCallMs: 0,
  rollingCountTimeout: 10_000,
  rollingCountBuckets: 10,
};

function setup(overrides: Partial<typeof options> = {}) {
  const changes: Array<[BreakerState, BreakerState]> = [];
  const breaker = new EndpointBreaker('primary', { ...options, ...overrides }, (s, p) =>
    changes.push([s, p]),
  );
  return { breaker, changes };
}

describe('EndpointBreaker', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('opens on health failures past the threshold once volume is reached', () => {
    const { breaker, changes } = setup();
    for (let i = 0; i < 3; i++) breaker.recordFailure(socketError());
    expect(breaker.state).toBe('closed'); // below volumeThreshold
    breaker.recordFailure(socketError());
    expect(breaker.state).toBe('open');
    expect(breaker.admits).toBe(false);
    expect(changes).toEqual([['open', 'closed']]);
    breaker.shutdown();
  });

  it('weighs failures against successes in the window', () => {
    const { breaker } = setup();
    for (let i = 0; i < 6; i++) breaker.recordSuccess();
    for (let i = 0; i < 6; i++) breaker.recordFailure(socketError());
    expect(breaker.state).toBe('closed'); // 6 of 12 = 50%, not above
    breaker.recordFailure(socketError());
    expect(breaker.state).toBe('open'); // 7 of 13
    breaker.shutdown();
  });

  it('forgets failures that slid out of the rolling window', async () => {
    const { breaker } = setup();
    for (let i = 0; i < 3; i++) breaker.recordFailure(socketError());
    await vi.advanceTimersByTimeAsync(10_000);
    breaker.recordFailure(socketError());
    expect(breaker.state).toBe('closed'); // only 1 call in the window now
    breaker.shutdown();
  });

  it('does not count SQL errors, conflicts or statement timeouts', () => {
    const { breaker } = setup({ volumeThreshold: 1 });
    for (const code of ['23505', '42P01', '40001', '57014', '25006']) {
      breaker.recordFailure(pgError(code));
    }
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });

  it('counts acquire timeouts', () => {
    const { breaker } = setup({ volumeThreshold: 2 });
    breaker.recordFailure(new AcquireTimeoutError('primary', 10));
    breaker.recordFailure(new AcquireTimeoutError('primary', 10));
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('opens on consecutive failures after a long run of successes', () => {
    const { breaker } = setup({ consecutiveFailures: 3 });
    for (let i = 0; i < 100; i++) breaker.recordSuccess();
    breaker.recordFailure(socketError());
    breaker.recordFailure(socketError());
    // The server answered in between: the streak starts again.
    breaker.recordSuccess();
    breaker.recordFailure(socketError());
    breaker.recordFailure(socketError());
    expect(breaker.state).toBe('closed');
    breaker.recordFailure(socketError());
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('half-opens after resetTimeout, admits one probe, closes on its success', async () => {
    const { breaker, changes } = setup({ volumeThreshold: 1 });
    breaker.recordFailure(socketError());
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(breaker.state).toBe('half-open');
    expect(breaker.admits).toBe(true);
    let finishProbe: (v: string) => void = () => {};
    const probe = breaker.probe(() => new Promise<string>((resolve) => (finishProbe = resolve)));
    // While the probe is out, nobody else is admitted; a second probe is refused.
    expect(breaker.admits).toBe(false);
    await expect(breaker.probe(() => Promise.resolve('x'))).rejects.toBeInstanceOf(
      CircuitOpenError,
    );
    finishProbe('ok');
    await expect(probe).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    expect(changes.map(([s]) => s)).toEqual(['open', 'half-open', 'closed']);
    breaker.shutdown();
  });

  it('a probe answered with a SQL error closes the circuit (the server is back)', async () => {
    const { breaker } = setup({ volumeThreshold: 1 });
    breaker.recordFailure(socketError());
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(breaker.probe(() => Promise.reject(pgError('23505')))).rejects.toMatchObject({
      code: '23505',
    });
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });

  it("a probe the caller's own timeout ended after its statement was sent closes the circuit; one ended while connecting re-opens it", async () => {
    const { breaker } = setup({ volumeThreshold: 1 });
    breaker.recordFailure(socketError());
    await vi.advanceTimersByTimeAsync(1_000);
    // Sent: the server took the connection and the statement; the deadline was the caller's.
    await breaker.probe(() => Promise.reject(new TimeoutError(50))).catch(() => {});
    expect(breaker.state).toBe('closed');
    breaker.recordFailure(socketError());
    await vi.advanceTimersByTimeAsync(1_000);
    // Still connecting when the caller gave up: nothing is known of the server.
    await breaker.probe(() => Promise.reject(markNotSent(new TimeoutError(50)))).catch(() => {});
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('re-opens when the half-open probe fails, and starts clean after closing', async () => {
    const { breaker } = setup({ volumeThreshold: 2 });
    breaker.recordFailure(socketError());
    breaker.recordFailure(socketError());
    await vi.advanceTimersByTimeAsync(1_000);
    await breaker.probe(() => Promise.reject(socketError('ECONNRESET'))).catch(() => {});
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    await breaker.probe(() => Promise.resolve(1));
    expect(breaker.state).toBe('closed');
    // The failures from before the outage were forgotten on close.
    breaker.recordFailure(socketError());
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });

  it('enabled: false never opens', () => {
    const { breaker } = setup({ enabled: false, volumeThreshold: 1, consecutiveFailures: 1 });
    for (let i = 0; i < 5; i++) breaker.recordFailure(socketError());
    expect(breaker.admits).toBe(true);
    expect(breaker.isClosed).toBe(true);
    breaker.shutdown();
  });

  it('builds stackless CircuitOpenErrors naming the endpoint', () => {
    const { breaker } = setup();
    const err = breaker.openError();
    expect(err.code).toBe('E_CIRCUIT_OPEN');
    expect(err.endpoint).toBe('primary');
    breaker.shutdown();
  });

  it('counts a failure the classification cannot see (a primary found read-only)', () => {
    const { breaker } = setup({ consecutiveFailures: 2, volumeThreshold: 1_000 });
    breaker.recordFailure(pgError('25006')); // read-only: not a health failure by itself
    expect(breaker.state).toBe('closed');
    breaker.recordHealthFailure();
    breaker.recordHealthFailure();
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('a probe answered read-only (25006), or abandoned by its caller before anything was sent, re-opens the circuit', async () => {
    const { breaker } = setup({ volumeThreshold: 1 });
    breaker.recordFailure(socketError());
    await vi.advanceTimersByTimeAsync(1_000);
    await breaker.probe(() => Promise.reject(pgError('25006'))).catch(() => {});
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    const aborted = markNotSent(new AbortedError('primary', undefined));
    await breaker.probe(() => Promise.reject(aborted)).catch(() => {});
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('shutdown leaves no timer behind', () => {
    const { breaker } = setup({ volumeThreshold: 1 });
    breaker.recordFailure(socketError());
    breaker.shutdown();
    expect(vi.getTimerCount()).toBe(0);
  });
});
