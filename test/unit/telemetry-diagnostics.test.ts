/**
 * The diagnostics_channel publications: the `resilient-pool:query` tracing channel around a call
 * (start, end, asyncStart, asyncEnd, error; the context filled in as attempts are made), the
 * event channels (published only while subscribed; a retry's error described, never its
 * message), and the call observer becoming active when someone subscribes, with metrics and
 * tracing off.
 */
import diagnostics from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { createTelemetry } from '../../src/telemetry/create-telemetry.js';
import {
  DIAGNOSTICS_CHANNELS,
  diagnosticsEvents,
  type QueryChannelContext,
} from '../../src/telemetry/diagnostics.js';
import type { ObservedEndpoint } from '../../src/telemetry/observer.js';

const r1: ObservedEndpoint = { name: 'replica-1', role: 'replica', attributes: {} };
const r2: ObservedEndpoint = { name: 'replica-2', role: 'replica', attributes: {} };

const telemetry = createTelemetry(
  { metrics: undefined, tracing: undefined },
  { stats: () => ({ endpoints: [], failovers: 0, retryBudgetExhausted: 0 }) },
);
const calls = telemetry.calls;

const query = diagnostics.tracingChannel<unknown, QueryChannelContext>(DIAGNOSTICS_CHANNELS.query);
const undo: Array<() => void> = [];
afterEach(() => {
  for (const u of undo.splice(0)) u();
});

type Seen = Array<[string, QueryChannelContext]>;

/** Subscribes to all five query channels, recording a copy of the context at each. */
function subscribeQuery(): Seen {
  const seen: Seen = [];
  const record = (name: string) => (message: QueryChannelContext) => {
    seen.push([name, { ...message }]);
  };
  const handlers = {
    start: record('start'),
    end: record('end'),
    asyncStart: record('asyncStart'),
    asyncEnd: record('asyncEnd'),
    error: record('error'),
  };
  query.subscribe(handlers);
  undo.push(() => query.unsubscribe(handlers));
  return seen;
}

function subscribe(name: string): unknown[] {
  const seen: unknown[] = [];
  const handler = (message: unknown) => seen.push(message);
  diagnostics.subscribe(name, handler);
  undo.push(() => diagnostics.unsubscribe(name, handler));
  return seen;
}

describe('resilient-pool:query', () => {
  it('makes the calls active only while someone subscribes', () => {
    expect(calls?.active).toBe(false);
    subscribeQuery();
    expect(calls?.active).toBe(true);
    for (const u of undo.splice(0)) u();
    expect(calls?.active).toBe(false);
    // Any one of the five channels is enough.
    const onlyError = () => {};
    query.error.subscribe(onlyError);
    expect(calls?.active).toBe(true);
    query.error.unsubscribe(onlyError);
  });

  it('traces a call as a promise, the context filled in as it goes', async () => {
    const seen = subscribeQuery();
    const observed = calls?.begin({ kind: 'statement', role: 'read', text: 'SELECT $1' });
    const result = await observed?.run(async () => {
      observed.attempt(r1);
      observed.attempt(r2);
      return { rows: [{ v: 1 }] };
    });
    expect(result).toEqual({ rows: [{ v: 1 }] });
    expect(seen.map(([name]) => name)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(seen[0]?.[1]).toEqual({
      kind: 'statement',
      role: 'read',
      text: 'SELECT $1',
      endpoint: undefined,
      attempts: 0,
    });
    expect(seen[3]?.[1]).toEqual({
      kind: 'statement',
      role: 'read',
      text: 'SELECT $1',
      endpoint: 'replica-2',
      attempts: 2,
      result: { rows: [{ v: 1 }] },
    });
  });

  it('publishes error, then asyncStart and asyncEnd, for a failed call; the caller gets the error', async () => {
    const seen = subscribeQuery();
    const failure = new Error('Connection terminated unexpectedly');
    const observed = calls?.begin({ kind: 'checkout', role: 'write', text: undefined });
    await expect(
      observed?.run(async () => {
        observed.attempt(r1);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(seen.map(([name]) => name)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(seen[2]?.[1]).toMatchObject({ kind: 'checkout', endpoint: 'replica-1', error: failure });
  });

  it('leaves the call alone when nobody subscribes: the same promise comes back', () => {
    const observed = calls?.begin({ kind: 'statement', role: 'read', text: 'SELECT 1' });
    const promise = Promise.resolve(1);
    expect(observed?.run(() => promise)).toBe(promise);
  });
});

describe('event channels', () => {
  it('publish each event to its own channel, as a copy', () => {
    const breaker = subscribe('resilient-pool:breaker');
    const failover = subscribe('resilient-pool:failover');
    const payload = {
      endpoint: 'replica-1',
      role: 'replica' as const,
      state: 'open' as const,
      previous: 'closed' as const,
    };
    diagnosticsEvents.publish('breaker', payload);
    diagnosticsEvents.publish('failover', { from: 'node-0', to: 'node-1' });
    diagnosticsEvents.publish('eject', { endpoint: 'replica-1', reason: 'circuit open' });
    expect(breaker).toEqual([payload]);
    expect(breaker[0]).not.toBe(payload);
    expect(failover).toEqual([{ from: 'node-0', to: 'node-1' }]);
  });

  it('describe a retry error by name, code and class, never its message', () => {
    const retries = subscribe('resilient-pool:retry');
    const error = Object.assign(new Error('invalid input syntax for type integer: "s3cr3t"'), {
      code: '40001',
    });
    diagnosticsEvents.publish('retry', { endpoint: 'primary', attempt: 2, delayMs: 31, error });
    diagnosticsEvents.publish('retry', {
      endpoint: 'primary',
      attempt: 3,
      delayMs: 0,
      error: 'a string',
    });
    expect(retries).toEqual([
      {
        endpoint: 'primary',
        attempt: 2,
        delayMs: 31,
        error: { name: 'Error', code: '40001', errorClass: 'conflict' },
      },
      {
        endpoint: 'primary',
        attempt: 3,
        delayMs: 0,
        error: { name: undefined, code: undefined, errorClass: 'permanent' },
      },
    ]);
    expect(JSON.stringify(retries)).not.toContain('s3cr3t');
  });

  it('build nothing while nobody subscribes', () => {
    let read = false;
    const error = {
      get code() {
        read = true;
        return 'ECONNRESET';
      },
    };
    diagnosticsEvents.publish('retry', { endpoint: 'primary', attempt: 2, delayMs: 0, error });
    expect(read).toBe(false);
  });

  it('are named as documented', () => {
    expect(Object.values(DIAGNOSTICS_CHANNELS)).toEqual([
      'resilient-pool:query',
      'resilient-pool:breaker',
      'resilient-pool:retry',
      'resilient-pool:failover',
      'resilient-pool:reject',
      'resilient-pool:eject',
      'resilient-pool:readmit',
      'resilient-pool:routing',
      'resilient-pool:down',
      'resilient-pool:up',
    ]);
  });
});
