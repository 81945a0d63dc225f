/**
 * QueueDelayBound alone (queue.maxQueueDelayMs): the drain rate it measures, the expected wait
 * it derives, and when it refuses. Time is passed in, so no timers are needed.
 */
import { describe, expect, it } from 'vitest';
import { QueueDelayBound } from '../../src/endpoint/queue-delay.js';

/** Permits coming back every `gapMs` from `from`, `count` times, with `waiting` calls waiting. */
function drain(bound: QueueDelayBound, from: number, gapMs: number, count: number, waiting = 3) {
  let now = from;
  for (let i = 0; i < count; i++) {
    bound.released(now, waiting);
    now += gapMs;
  }
  return now - gapMs;
}

describe('QueueDelayBound', () => {
  it('before any drain is measured, counts one current gap per call: how long the queue has stood with no permit back', () => {
    const bound = new QueueDelayBound(20);
    expect(bound.expectedWaitMs(10, 0)).toBe(0);
    bound.released(100, 5); // one release: no gap yet
    expect(bound.expectedWaitMs(10, 100)).toBe(0);
    // 5 ms since that permit came back (the oldest waiter has waited longer): 5 ms per call.
    expect(bound.expectedWaitMs(2, 105, 15)).toBe(15);
    expect(bound.refuses(105, 3, 15, 4)).toBe(false); // 4 x 5 = 20, not past the bound
    expect(bound.refuses(105, 4, 15, 4)).toBe(true);
    expect(bound.refuses(105, 1, 21, 4)).toBe(true); // the queue stands
    // A queue just formed (its oldest waiter 0.5 ms old) is not held to the last permit's age.
    expect(bound.expectedWaitMs(4, 119, 0.5)).toBe(2.5);
  });

  it('a queue that stood longer than the mean gap since the last permit came back is held to that gap', () => {
    const bound = new QueueDelayBound(10);
    const last = drain(bound, 0, 3, 30); // one permit back every 3 ms
    expect(bound.expectedWaitMs(1, last + 1, 1)).toBeCloseTo(6);
    expect(bound.refuses(last + 1, 1, 1, 4)).toBe(false);
    // 8 ms without a permit back, the oldest waiting all along: two calls ahead, 24 ms.
    expect(bound.expectedWaitMs(1, last + 8, 8)).toBe(16);
    expect(bound.refuses(last + 8, 1, 8, 4)).toBe(true);
  });

  it('a statement time answered recently keeps the endpoint completing for twice that, halved every second', () => {
    const bound = new QueueDelayBound(10);
    bound.released(0, 0);
    bound.served(20, 0);
    // Every permit taken by statements of 20 ms at 0: nothing back for 30 ms is no hang yet.
    expect(bound.refuses(30, 3, 9, 4)).toBe(true); // 4 x 9 ms past the bound
    expect(bound.refuses(30, 1, 3, 4)).toBe(false); // 2 x 3 ms
    // Past twice the statement time (halved a little since): a hang, left to the timeouts.
    expect(bound.refuses(41, 3, 9, 4)).toBe(false);
    // Two seconds later the same statement time counts a quarter: 10 ms, the bound's own.
    bound.released(2_000, 0);
    expect(bound.refuses(2_009, 3, 9, 4)).toBe(true);
    expect(bound.refuses(2_011, 3, 9, 4)).toBe(false);
    // A longer statement replaces it; a shorter one does not lower it.
    bound.served(100, 2_011);
    bound.served(1, 2_012);
    expect(bound.refuses(2_150, 3, 9, 4)).toBe(true);
  });

  it('measures the gap between permits that both came back to waiters', () => {
    const bound = new QueueDelayBound(20);
    const last = drain(bound, 0, 5, 30);
    expect(bound.expectedWaitMs(0, last)).toBeCloseTo(5);
    expect(bound.expectedWaitMs(3, last)).toBeCloseTo(20);
  });

  it('does not count an idle spell as a slow drain', () => {
    const bound = new QueueDelayBound(20);
    const last = drain(bound, 0, 5, 30);
    bound.released(last + 1, 0); // the queue emptied
    bound.released(last + 500, 2); // half a second later, a new queue
    expect(bound.expectedWaitMs(0, last + 500)).toBeCloseTo(5, 0);
    bound.released(last + 505, 2);
    expect(bound.expectedWaitMs(0, last + 505)).toBeCloseTo(5, 0);
  });

  it('forgets a drain rate a second after its last sample', () => {
    const bound = new QueueDelayBound(10);
    // An overload of 20 ms statements on 4 connections: a permit back every 5 ms.
    const last = drain(bound, 0, 5, 30);
    expect(bound.expectedWaitMs(2, last + 1_000)).toBeCloseTo(15);
    // Later, other work: that drain says nothing of it any more.
    expect(bound.expectedWaitMs(2, last + 1_001)).toBe(0);
    expect(bound.refuses(last + 1_001, 2, 1, 4)).toBe(false);
    // A new queue is measured afresh, from its own permits: the two seconds without a permit
    // back (calls waiting throughout: a hang) are no sample of its drain.
    bound.released(last + 2_000, 3);
    expect(bound.expectedWaitMs(0, last + 2_000)).toBe(0);
    bound.released(last + 2_001, 3);
    expect(bound.expectedWaitMs(0, last + 2_001)).toBeCloseTo(1);
  });

  it('follows a change of drain rate within tens of permits', () => {
    const bound = new QueueDelayBound(20);
    const last = drain(bound, 0, 5, 30);
    const now = drain(bound, last + 1, 1, 60);
    expect(bound.expectedWaitMs(0, now)).toBeLessThan(1.2);
  });

  it('refuses a call whose expected wait passes the bound, with a young queue', () => {
    const bound = new QueueDelayBound(20);
    const last = drain(bound, 0, 5, 30);
    // 3 ahead + itself, 5 ms apart: 20 ms, not past the bound; 4 ahead: 25 ms, refused.
    expect(bound.refuses(last + 1, 3, 2, 4)).toBe(false);
    expect(bound.refuses(last + 1, 4, 2, 4)).toBe(true);
    // Nobody waiting: a call that waits at all is never refused by the estimate.
    expect(bound.refuses(last + 1, 0, 0, 4)).toBe(false);
  });

  it('refuses nothing once the endpoint completes nothing for two statement times (a hang is not overload)', () => {
    const bound = new QueueDelayBound(20);
    // 4 permits, one back every 5 ms: statements of about 20 ms.
    const last = drain(bound, 0, 5, 30);
    expect(bound.refuses(last + 40, 10, 500, 4)).toBe(true);
    expect(bound.refuses(last + 41, 10, 500, 4)).toBe(false);
    // With one permit the same gaps mean 5 ms statements: the bound (20 ms) is the longer wait.
    expect(bound.refuses(last + 20, 10, 500, 1)).toBe(true);
    expect(bound.refuses(last + 21, 10, 500, 1)).toBe(false);
  });

  it('permits that come back in clusters a statement time apart are still completing', () => {
    const bound = new QueueDelayBound(15);
    // 4 calls admitted together finish together: clusters 18 or 26 ms apart (22 on average), so
    // one permit back every 5.5 ms on average, and a statement time of about 22 ms.
    let last = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 4; i++) bound.released(last + i * 0.05, 6);
      last += round % 2 === 0 ? 18 : 26;
    }
    last -= 18;
    // 25 ms after a cluster, longer than the mean statement time, before the next: still
    // overloaded, still shedding.
    expect(bound.refuses(last + 25, 6, 10, 4)).toBe(true);
  });
});
