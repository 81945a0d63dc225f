import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isTerminatedSession } from '../../src/classify.js';
import { AbortedError } from '../../src/errors.js';
import {
  markNotApplied,
  markSentTo,
  mayRetryStatement,
  sentToHotStandby,
  tookDeadClient,
  wasNotSent,
} from '../../src/retry/policy.js';
import { retryAfterFailure } from '../../src/retry/retry-loop.js';
import { afterPendingIo } from '../../src/retry/sleep.js';

const lost = () => new Error('Connection terminated unexpectedly');

describe('where a statement was sent wins over what the endpoint is now', () => {
  it('sent to a standby: re-sent, even if the endpoint is writable now', () => {
    const err = markSentTo(lost(), true);
    expect(sentToHotStandby(err)).toBe(true);
    expect(mayRetryStatement(err, false, false)).toBe(true);
  });

  it('sent to a writable server: not re-sent, even if the endpoint is a standby now', () => {
    const err = markSentTo(lost(), false);
    expect(mayRetryStatement(err, false, true)).toBe(false);
    expect(mayRetryStatement(err, true, true)).toBe(true); // the caller said idempotent
  });

  it('unmarked: the endpoint as it is now', () => {
    expect(sentToHotStandby(lost())).toBeUndefined();
    expect(mayRetryStatement(lost(), false, true)).toBe(true);
    expect(mayRetryStatement(lost(), false, false)).toBe(false);
  });
});

describe('statements that provably had no effect', () => {
  it('markNotApplied: re-sent like one never sent', () => {
    const err = markNotApplied(
      Object.assign(new Error('terminating connection'), { code: '57P01', severity: 'FATAL' }),
    );
    expect(wasNotSent(err)).toBe(true);
    expect(mayRetryStatement(err, false, false)).toBe(true);
  });

  it('isTerminatedSession: the server answered 57P01, whatever the severity says in its language', () => {
    expect(isTerminatedSession({ code: '57P01', severity: 'FATAL' })).toBe(true);
    expect(isTerminatedSession({ code: '57P01', severity: 'SCHWERWIEGEND' })).toBe(true);
    expect(isTerminatedSession({ code: '57P01' })).toBe(false);
    expect(isTerminatedSession({ code: '57P02', severity: 'FATAL' })).toBe(false);
    expect(isTerminatedSession({ code: '57P03', severity: 'FATAL' })).toBe(false);
    expect(isTerminatedSession(null)).toBe(false);
  });
});

describe('a retry that goes at once still yields to pending I/O', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('resolves after a turn of the event loop, fake timers or not', async () => {
    await expect(afterPendingIo()).resolves.toBeUndefined();
  });

  it('rejects at once on an aborted signal or an ended pool', async () => {
    await expect(afterPendingIo(AbortSignal.abort())).rejects.toBeInstanceOf(AbortedError);
    const ended = new AbortController();
    ended.abort(new Error('closed'));
    await expect(afterPendingIo(undefined, ended.signal)).rejects.toThrow('closed');
  });

  it('after a dead client (a refused write), I/O already pending is handled before the retry', async () => {
    const order: string[] = [];
    const refused = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' });
    expect(tookDeadClient(refused)).toBe(true);
    const result = retryAfterFailure({
      first: refused,
      retries: 1,
      attempt: async () => {
        order.push('retry');
        return 'ok';
      },
      decide: () => {
        // An I/O callback that is already due when the loop decides to go at once.
        setImmediateReal(() => order.push('pending io'));
        return 0;
      },
    });
    await expect(result).resolves.toBe('ok');
    expect(order).toEqual(['pending io', 'retry']);
  });

  it('after any other failure, a retry that goes at once goes in the same turn', async () => {
    const order: string[] = [];
    const lostInFlight = Object.assign(new Error('read ECONNRESET'), { syscall: 'read' });
    expect(tookDeadClient(lostInFlight)).toBe(false);
    expect(tookDeadClient(new Error('Client was closed and is not queryable'))).toBe(true);
    const result = retryAfterFailure({
      first: lostInFlight,
      retries: 1,
      attempt: async () => {
        order.push('retry');
        return 'ok';
      },
      decide: () => {
        setImmediateReal(() => order.push('pending io'));
        return 0;
      },
    });
    await expect(result).resolves.toBe('ok');
    expect(order).toEqual(['retry']);
  });
});

/** The real setImmediate, captured before any test installs fake timers. */
const setImmediateReal = globalThis.setImmediate;
