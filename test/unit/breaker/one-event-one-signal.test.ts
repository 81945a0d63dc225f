/**
 * One network event that breaks every open connection is one failure signal: the losses of
 * connections that were already open when the latest failure was counted are its echoes. A
 * server that fails every new call still opens the circuit at once.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker } from '../../../src/breaker/circuit-breaker.js';
import { HealthWindow } from '../../../src/breaker/health-window.js';
import type { CircuitBreakerSettings } from '../../../src/breaker/types.js';
import {
  EndpointBreaker,
  lostConnectionStamp,
  markConnectionLost,
  stampConnection,
} from '../../../src/endpoint/endpoint-breaker.js';
import type { BreakerState } from '../../../src/telemetry/events.js';

const settings: CircuitBreakerSettings = {
  enabled: true,
  errorThresholdPercentage: 50,
  volumeThreshold: 10,
  consecutiveFailures: 3,
  resetTimeout: 1_000,
  rollingCountTimeout: 10_000,
  rollingCountBuckets: 10,
};

function resetError(): Error {
  return Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' });
}

describe('HealthWindow: echoes of one event', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('counts the first loss of an event, not the losses of connections open with it', () => {
    const window = new HealthWindow({ ...settings, volumeThreshold: 1_000 });
    const born = window.signals;
    expect(window.failure(born)).toBe(false);
    expect(window.signals).toBe(born + 1);
    for (let i = 0; i < 20; i++) expect(window.failure(born)).toBe(false);
    // Twenty connections lost together: one failure in the window, the streak at 1.
    expect(window.calls()).toBe(1);
    expect(window.signals).toBe(born + 1);
    window.stop();
  });

  it('a connection opened after the latest failure counts: a server failing every new call', () => {
    const window = new HealthWindow({ ...settings, volumeThreshold: 1_000 });
    expect(window.failure(window.signals)).toBe(false);
    expect(window.failure(window.signals)).toBe(false);
    expect(window.failure(window.signals)).toBe(true);
    window.stop();
  });

  it('failures without a stamp (connects refused, timeouts, slow calls) always count', () => {
    const window = new HealthWindow({ ...settings, volumeThreshold: 1_000 });
    expect(window.failure()).toBe(false);
    expect(window.failure()).toBe(false);
    expect(window.failure()).toBe(true);
    window.stop();
  });

  it('once a success ends the streak, a new event counts again, however old the connection', () => {
    const window = new HealthWindow({
      ...settings,
      consecutiveFailures: 2,
      volumeThreshold: 1_000,
    });
    const old = window.signals;
    window.failure(old);
    window.success();
    // A second event, months later, on a connection older than both: a signal again.
    expect(window.isEcho(old)).toBe(false);
    expect(window.failure(old)).toBe(false);
    expect(window.failure(old)).toBe(false); // its echo
    expect(window.calls()).toBe(3);
    window.stop();
  });

  it('echoes do not move the percentage either', async () => {
    const window = new HealthWindow({ ...settings, consecutiveFailures: 0, volumeThreshold: 4 });
    window.success();
    window.success();
    window.success();
    const born = window.signals;
    window.failure(born);
    for (let i = 0; i < 10; i++) window.failure(born);
    expect(window.calls()).toBe(4); // 1 of 4 failed, not 11 of 14
    await vi.advanceTimersByTimeAsync(settings.rollingCountTimeout);
    expect(window.calls()).toBe(0);
    window.stop();
  });
});

describe('CircuitBreaker: one reset of every connection', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function setup(overrides: Partial<CircuitBreakerSettings> = {}) {
    const changes: Array<[BreakerState, BreakerState]> = [];
    const breaker = new CircuitBreaker('dep', { ...settings, ...overrides }, (s, p) =>
      changes.push([s, p]),
    );
    return { breaker, changes };
  }

  it('stays closed when every connection in flight is lost at once', () => {
    const { breaker, changes } = setup();
    const born = breaker.signals;
    for (let i = 0; i < 8; i++) breaker.recordFailure(resetError(), born);
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual([]);
    breaker.shutdown();
  });

  it('opens when the connections opened after it fail too, then half-opens and closes', async () => {
    const { breaker, changes } = setup();
    breaker.recordFailure(resetError(), breaker.signals);
    breaker.recordFailure(resetError(), breaker.signals); // a new connection, lost again
    expect(breaker.state).toBe('closed');
    breaker.recordFailure(resetError(), breaker.signals);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(settings.resetTimeout);
    expect(breaker.state).toBe('half-open');
    await expect(breaker.probe(() => Promise.resolve('up'))).resolves.toBe('up');
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual([
      ['open', 'closed'],
      ['half-open', 'open'],
      ['closed', 'half-open'],
    ]);
    breaker.shutdown();
  });

  it('a circuit closed again starts a clean streak; old connections lost then count once', async () => {
    const { breaker } = setup({ consecutiveFailures: 1 });
    const old = breaker.signals;
    breaker.recordFailure(resetError(), old);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(settings.resetTimeout);
    await breaker.probe(() => Promise.resolve());
    expect(breaker.state).toBe('closed');
    breaker.recordFailure(resetError(), old);
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });
});

describe('EndpointBreaker: connection stamps', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('stamps a connection once, and hears a lost one with its stamp', () => {
    const breaker = new EndpointBreaker('r1', settings, () => {});
    const clients = Array.from({ length: 6 }, () => ({}));
    for (const client of clients) stampConnection(client, breaker);
    const errors = clients.map((client) => markConnectionLost(resetError(), client));
    expect(lostConnectionStamp(errors[0])).toBe(0);
    // The reset reaches every client: six losses, one signal.
    for (const err of errors) breaker.recordFailure(err);
    expect(breaker.state).toBe('closed');
    // Clients opened since, lost again: the server really is failing.
    const fresh = [{}, {}];
    for (const client of fresh) stampConnection(client, breaker);
    stampConnection(clients[0]!, breaker); // stamped once: its stamp stays 0
    expect(lostConnectionStamp(markConnectionLost(resetError(), clients[0]!))).toBe(0);
    breaker.recordFailure(markConnectionLost(resetError(), fresh[0]!));
    expect(breaker.state).toBe('closed');
    const newer = {};
    stampConnection(newer, breaker);
    breaker.recordFailure(markConnectionLost(resetError(), newer));
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('an unstamped error (a refused connect) counts as before', () => {
    const breaker = new EndpointBreaker('r1', settings, () => {});
    const refused = () =>
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(lostConnectionStamp(refused())).toBeUndefined();
    breaker.recordFailure(refused());
    breaker.recordFailure(refused());
    breaker.recordFailure(refused());
    expect(breaker.state).toBe('open');
    breaker.shutdown();
  });

  it('SQL errors never count, stamped or not', () => {
    const breaker = new EndpointBreaker('r1', { ...settings, consecutiveFailures: 1 }, () => {});
    const client = {};
    stampConnection(client, breaker);
    const sqlError = Object.assign(new Error('duplicate key'), {
      code: '23505',
      severity: 'ERROR',
    });
    breaker.recordFailure(markConnectionLost(sqlError, client));
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });
});
