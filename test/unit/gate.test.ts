import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Gate } from '../../src/endpoint/gate.js';
import { AbortedError, AcquireTimeoutError, QueueFullError } from '../../src/errors.js';

const gate = (maxConcurrent = 2, maxWaiting = 3, acquireTimeout = 1_000) =>
  new Gate({ name: 'ep', maxConcurrent, maxWaiting, acquireTimeout });

describe('Gate', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('admits synchronously up to maxConcurrent, then queues', async () => {
    const g = gate(2, 3);
    expect(g.tryAcquire()).toBe(true);
    expect(g.tryAcquire()).toBe(true);
    expect(g.tryAcquire()).toBe(false);
    expect(g.inUse).toBe(2);
    const waiting = g.acquire();
    expect(g.waiting).toBe(1);
    g.release();
    await expect(waiting).resolves.toBeUndefined();
    expect(g.inUse).toBe(2);
    expect(g.waiting).toBe(0);
  });

  it('hands permits to waiters in FIFO order', async () => {
    const g = gate(1, 10);
    g.tryAcquire();
    const order: number[] = [];
    const waits = [0, 1, 2, 3].map((i) => g.acquire().then(() => order.push(i)));
    for (let i = 0; i < 4; i++) {
      g.release();
      await Promise.resolve();
    }
    await Promise.all(waits);
    expect(order).toEqual([0, 1, 2, 3]);
  });

  it('does not let a newcomer jump the queue while someone waits', async () => {
    const g = gate(1, 10);
    g.tryAcquire();
    const first = g.acquire();
    g.release(); // permit goes to `first`, not to the free count
    expect(g.tryAcquire()).toBe(false);
    await first;
  });

  it('refuses at once with QueueFullError when maxWaiting are waiting', async () => {
    const g = gate(1, 2);
    g.tryAcquire();
    const a = g.acquire();
    const b = g.acquire();
    const refused = g.acquire();
    await expect(refused).rejects.toBeInstanceOf(QueueFullError);
    await expect(refused).rejects.toMatchObject({ code: 'E_QUEUE_FULL', endpoint: 'ep' });
    expect(g.waiting).toBe(2);
    g.release();
    g.release();
    await Promise.all([a, b]);
  });

  it('maxWaiting 0 refuses every wait', async () => {
    const g = gate(1, 0);
    g.tryAcquire();
    await expect(g.acquire()).rejects.toBeInstanceOf(QueueFullError);
  });

  it('times out a waiter with AcquireTimeoutError and frees its place', async () => {
    const g = gate(1, 1, 500);
    g.tryAcquire();
    const waiting = g.acquire();
    const assertion = expect(waiting).rejects.toBeInstanceOf(AcquireTimeoutError);
    await vi.advanceTimersByTimeAsync(499);
    expect(g.waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await assertion;
    expect(g.waiting).toBe(0);
    // The place is free again: another caller can wait.
    const next = g.acquire();
    g.release();
    await expect(next).resolves.toBeUndefined();
  });

  it('a timed-out waiter never receives a permit later', async () => {
    const g = gate(1, 5, 100);
    g.tryAcquire();
    const late = g.acquire().catch((e: unknown) => e);
    const second = g.acquire(undefined, 10_000);
    await vi.advanceTimersByTimeAsync(100);
    expect(await late).toBeInstanceOf(AcquireTimeoutError);
    g.release();
    await expect(second).resolves.toBeUndefined();
    expect(g.inUse).toBe(1);
  });

  it('abort rejects with AbortedError at once and frees the slot', async () => {
    const g = gate(1, 1);
    g.tryAcquire();
    const controller = new AbortController();
    const waiting = g.acquire(controller.signal);
    controller.abort(new Error('user gave up'));
    const err = await waiting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as AbortedError).name).toBe('AbortError');
    expect((err as AbortedError).cause).toEqual(new Error('user gave up'));
    expect(g.waiting).toBe(0);
    // Its timer is gone: nothing fires later.
    expect(vi.getTimerCount()).toBe(0);
    const next = g.acquire();
    g.release();
    await next;
  });

  it('an already aborted signal is refused without queueing', async () => {
    const g = gate(1, 1);
    g.tryAcquire();
    await expect(g.acquire(AbortSignal.abort())).rejects.toBeInstanceOf(AbortedError);
    expect(g.waiting).toBe(0);
  });

  it('keeps memory bounded while an endpoint hangs and waiters keep timing out', async () => {
    const g = gate(1, 10, 10);
    g.tryAcquire();
    for (let i = 0; i < 5_000; i++) {
      g.acquire().catch(() => {});
      if (i % 10 === 9) await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(10);
    expect(g.waiting).toBe(0);
    expect((g as unknown as { queue: unknown[] }).queue.length).toBeLessThan(200);
  });

  it('release without holders never exceeds maxConcurrent', () => {
    const g = gate(2, 1);
    g.release();
    g.release();
    expect(g.inUse).toBe(0);
    expect(g.tryAcquire()).toBe(true);
    expect(g.tryAcquire()).toBe(true);
    expect(g.tryAcquire()).toBe(false);
  });

  it('rejectAll fails every waiter', async () => {
    const g = gate(1, 3);
    g.tryAcquire();
    const waits = [g.acquire(), g.acquire()];
    g.rejectAll(() => new Error('closed'));
    for (const w of waits) await expect(w).rejects.toThrow('closed');
    expect(g.waiting).toBe(0);
  });
});
