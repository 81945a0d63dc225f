/**
 * The failover buffer's state machine, with fake timers: FIFO release, the per-call bound counted
 * from the first entry, the cap, the caller's signal, drain at end(), and the counters, also
 * under an adversarial random schedule. Every settled promise is checked to have settled once,
 * and no timer or abort listener is left behind.
 */
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AbortedError,
  FailoverBufferFullError,
  FailoverTimeoutError,
  PoolClosedError,
  TimeoutError,
} from '../../src/errors.js';
import { type BufferPlace, FailoverBuffer } from '../../src/pool/failover-buffer.js';
import { wasNotSent } from '../../src/retry/policy.js';

const CAUSE = Object.assign(new Error('circuit open'), { code: 'E_CIRCUIT_OPEN' });

const buffer = (bufferMs = 1_000, maxBuffered = 3) =>
  new FailoverBuffer({ endpoint: 'primary', bufferMs, maxBuffered });

type Outcome =
  | { status: 'pending' }
  | { status: 'released'; place: BufferPlace }
  | { status: 'rejected'; error: unknown };

/** Tracks a hold's outcome, and fails the test if the promise ever settles twice (it cannot, but a
 * resolve after a reject would be swallowed silently; the counters would then disagree). */
function track(p: Promise<BufferPlace>): { outcome: Outcome } {
  const t: { outcome: Outcome } = { outcome: { status: 'pending' } };
  p.then(
    (place) => {
      t.outcome = { status: 'released', place };
    },
    (error: unknown) => {
      t.outcome = { status: 'rejected', error };
    },
  );
  return t;
}

/** The counters' one invariant: every entry (first or return) ended one way, or is still held. */
function balanced(b: FailoverBuffer): boolean {
  const s = b.stats();
  return (
    s.bufferedTotal + s.requeued === s.released + s.expired + s.aborted + s.drained + s.buffered
  );
}

describe('FailoverBuffer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('lets calls out oldest first, as many as asked', async () => {
    const b = buffer(1_000, 10);
    const order: number[] = [];
    const holds = [0, 1, 2, 3].map((i) => b.hold(CAUSE, undefined).then(() => order.push(i)));
    expect(b.size).toBe(4);
    expect(b.release(3)).toBe(3);
    await Promise.resolve();
    await Promise.resolve();
    expect(order).toEqual([0, 1, 2]);
    expect(b.size).toBe(1);
    expect(b.release()).toBe(1);
    await Promise.all(holds);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(b.stats()).toMatchObject({ buffered: 0, bufferedTotal: 4, released: 4 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('lets nobody out for a limit of 0, a negative one or NaN, and nothing from an empty buffer', () => {
    const b = buffer();
    expect(b.release()).toBe(0);
    void b.hold(CAUSE, undefined);
    expect(b.release(0)).toBe(0);
    expect(b.release(-1)).toBe(0);
    expect(b.release(Number.NaN)).toBe(0);
    expect(b.release(0.5)).toBe(0);
    expect(b.size).toBe(1);
    expect(b.release(1.9)).toBe(1);
  });

  it('fails a call with FailoverTimeoutError exactly when bufferMs has passed, keeping the cause', async () => {
    const b = buffer(1_000);
    const held = track(b.hold(CAUSE, undefined));
    await vi.advanceTimersByTimeAsync(999);
    expect(held.outcome.status).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(held.outcome.status).toBe('rejected');
    const error = (held.outcome as { error: unknown }).error;
    expect(error).toBeInstanceOf(FailoverTimeoutError);
    expect(error).toMatchObject({
      code: 'E_FAILOVER_TIMEOUT',
      endpoint: 'primary',
      bufferMs: 1_000,
      retryable: true,
      cause: CAUSE,
    });
    // The retry rule and the cache's invalidation must know nothing was sent.
    expect(wasNotSent(error)).toBe(true);
    expect(b.stats()).toMatchObject({ buffered: 0, expired: 1, released: 0 });
    // A release after the expiry finds nobody: nothing is let out twice or after failing.
    expect(b.release()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses a call at once when maxBuffered are held, and takes one again when a place frees', async () => {
    const b = buffer(1_000, 2);
    const first = b.hold(CAUSE, undefined);
    void b.hold(CAUSE, undefined);
    const refused = b.hold(CAUSE, undefined);
    await expect(refused).rejects.toBeInstanceOf(FailoverBufferFullError);
    await expect(refused).rejects.toMatchObject({
      code: 'E_FAILOVER_BUFFER_FULL',
      maxBuffered: 2,
      cause: CAUSE,
    });
    expect(wasNotSent(await refused.catch((e: unknown) => e))).toBe(true);
    expect(b.stats()).toMatchObject({ buffered: 2, bufferedTotal: 2, refusedFull: 1 });
    b.release(1);
    await first;
    const again = track(b.hold(CAUSE, undefined));
    await Promise.resolve();
    expect(again.outcome.status).toBe('pending');
    expect(b.size).toBe(2);
    expect(balanced(b)).toBe(true);
  });

  it('a call that comes back keeps its turn ahead of later ones', async () => {
    const b = buffer(1_000, 10);
    const order: string[] = [];
    const a = b.hold(CAUSE, undefined);
    const later = ['b', 'c'].map((n) => b.hold(CAUSE, undefined).then(() => order.push(n)));
    b.release(1);
    const place = await a;
    // `a` found the primary refusing again: back with its place, before b and c.
    const back = b.hold(CAUSE, undefined, place).then(() => order.push('a'));
    const newcomer = b.hold(CAUSE, undefined).then(() => order.push('d'));
    b.release();
    await Promise.all([back, newcomer, ...later]);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(b.stats()).toMatchObject({ bufferedTotal: 4, requeued: 1, released: 5 });
    expect(balanced(b)).toBe(true);
  });

  it('a call that comes back is not refused by a full buffer (it already had a place)', async () => {
    const b = buffer(1_000, 1);
    const a = b.hold(CAUSE, undefined);
    b.release();
    const place = await a;
    void b.hold(CAUSE, undefined); // a newcomer takes the only place
    const back = track(b.hold(CAUSE, undefined, place));
    await Promise.resolve();
    expect(back.outcome.status).toBe('pending');
    expect(b.size).toBe(2);
    expect(b.stats().refusedFull).toBe(0);
  });

  it('the bound of a call that comes back counts from its first entry', async () => {
    const b = buffer(1_000, 10);
    const a = b.hold(CAUSE, undefined);
    await vi.advanceTimersByTimeAsync(600);
    b.release();
    const place = await a;
    const back = track(b.hold(CAUSE, undefined, place));
    await vi.advanceTimersByTimeAsync(399);
    expect(back.outcome.status).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(back.outcome).toMatchObject({
      status: 'rejected',
      error: { code: 'E_FAILOVER_TIMEOUT' },
    });
    // Past its bound, a call that comes back fails at once.
    const late = b.hold(CAUSE, undefined, place);
    await expect(late).rejects.toBeInstanceOf(FailoverTimeoutError);
    expect(b.stats()).toMatchObject({ expired: 2, requeued: 2, buffered: 0 });
    expect(balanced(b)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("ends a wait with the caller's AbortedError when its signal fires, and removes its listener", async () => {
    const b = buffer();
    const controller = new AbortController();
    const held = track(b.hold(CAUSE, controller.signal));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort(new Error('client went away'));
    await Promise.resolve();
    expect(held.outcome.status).toBe('rejected');
    const error = (held.outcome as { error: unknown }).error;
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as Error).cause).toEqual(new Error('client went away'));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(b.stats()).toMatchObject({ buffered: 0, aborted: 1 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("ends a wait with the call's own TimeoutError when its deadline fires first", async () => {
    const b = buffer(10_000);
    const controller = new AbortController();
    const held = track(b.hold(CAUSE, controller.signal));
    const deadline = new TimeoutError(250);
    setTimeout(() => controller.abort(deadline), 250);
    await vi.advanceTimersByTimeAsync(250);
    expect(held.outcome).toEqual({ status: 'rejected', error: deadline });
  });

  it('refuses a call whose signal already fired without counting it as buffered', async () => {
    const b = buffer();
    const held = b.hold(CAUSE, AbortSignal.abort('gone'));
    await expect(held).rejects.toBeInstanceOf(AbortedError);
    expect(b.stats()).toMatchObject({ buffered: 0, bufferedTotal: 0, aborted: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an abort after the call was let out changes nothing', async () => {
    const b = buffer();
    const controller = new AbortController();
    const held = b.hold(CAUSE, controller.signal);
    b.release();
    controller.abort();
    await expect(held).resolves.toMatchObject({ ticket: 1 });
    expect(b.stats()).toMatchObject({ released: 1, aborted: 0 });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('an abort in the same tick as the release: the release wins, once', async () => {
    const b = buffer();
    const controller = new AbortController();
    const held = track(b.hold(CAUSE, controller.signal));
    expect(b.release()).toBe(1);
    controller.abort();
    expect(b.release()).toBe(0);
    await Promise.resolve();
    expect(held.outcome.status).toBe('released');
    expect(balanced(b)).toBe(true);
  });

  it('drain() fails every held call at once, and refuses every later one', async () => {
    const b = buffer(1_000, 10);
    const controller = new AbortController();
    const holds = [b.hold(CAUSE, controller.signal), b.hold(CAUSE, undefined)];
    b.drain(() => new PoolClosedError());
    for (const h of holds) await expect(h).rejects.toBeInstanceOf(PoolClosedError);
    // Nothing the drained calls left behind fires later.
    controller.abort();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(b.release()).toBe(0);
    await expect(b.hold(CAUSE, undefined)).rejects.toBeInstanceOf(PoolClosedError);
    expect(b.stats()).toMatchObject({ buffered: 0, drained: 2, aborted: 0, released: 0 });
    expect(balanced(b)).toBe(true);
  });

  it('drain() while a call is coming back: the call is refused with the same error', async () => {
    const b = buffer();
    const a = b.hold(CAUSE, undefined);
    b.release();
    const place = await a;
    b.drain(() => new PoolClosedError());
    await expect(b.hold(CAUSE, undefined, place)).rejects.toBeInstanceOf(PoolClosedError);
  });

  it('unrefs its timers: a buffered call does not keep the process alive on its own', () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const b = buffer();
    void b.hold(CAUSE, undefined);
    const timer = spy.mock.results[0]?.value as { hasRef?: () => boolean } | undefined;
    expect(timer?.hasRef?.()).toBe(false);
    spy.mockRestore();
    b.release();
  });

  it('keeps its counters balanced and its order under a random schedule', async () => {
    // A seeded generator, so a failure can be replayed.
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const b = buffer(500, 25);
    const released: number[] = [];
    const waiting: Array<{ controller: AbortController; promise: Promise<void> }> = [];
    const returns: BufferPlace[] = [];
    let settledTwice = 0;
    const follow = (p: Promise<BufferPlace>, controller: AbortController) => {
      let settled = false;
      const mark = () => {
        if (settled) settledTwice++;
        settled = true;
      };
      const promise = p.then(
        (place) => {
          mark();
          released.push(place.ticket);
          // Some calls find the primary still refusing and come back.
          if (random() < 0.3) returns.push(place);
        },
        () => mark(),
      );
      waiting.push({ controller, promise });
    };
    for (let step = 0; step < 2_000; step++) {
      const r = random();
      const controller = new AbortController();
      if (r < 0.4) follow(b.hold(CAUSE, controller.signal), controller);
      else if (r < 0.5 && returns.length > 0) {
        follow(b.hold(CAUSE, controller.signal, returns.shift()), controller);
      } else if (r < 0.7) {
        const before = released.length;
        b.release(Math.floor(random() * 4));
        await Promise.resolve();
        await Promise.resolve();
        // Each batch goes out by ticket.
        const batch = released.slice(before);
        expect(batch).toEqual([...batch].sort((x, y) => x - y));
      } else if (r < 0.8) {
        waiting[Math.floor(random() * waiting.length)]?.controller.abort();
      } else {
        await vi.advanceTimersByTimeAsync(Math.floor(random() * 200));
      }
      expect(b.size).toBeGreaterThanOrEqual(0);
      expect(balanced(b)).toBe(true);
    }
    b.drain(() => new PoolClosedError());
    await Promise.all(waiting.map((w) => w.promise));
    expect(settledTwice).toBe(0);
    expect(balanced(b)).toBe(true);
    expect(b.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    const s = b.stats();
    // The schedule did exercise every way out.
    for (const key of ['released', 'expired', 'aborted', 'refusedFull', 'requeued'] as const) {
      expect(s[key]).toBeGreaterThan(0);
    }
  });
});
