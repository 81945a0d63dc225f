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

  describe('a limit changed at run time (setLimit)', () => {
    /** Waiters that record the order in which they got their permit. */
    const waitAll = (g: Gate, n: number, order: number[]) =>
      Array.from({ length: n }, (_, i) => g.acquire().then(() => order.push(i)));

    it('starts at maxConcurrent and reports the limit', () => {
      const g = gate(4, 3);
      expect(g.limit).toBe(4);
      g.setLimit(2);
      expect(g.limit).toBe(2);
      expect(g.maxConcurrent).toBe(4);
    });

    it('keeps the limit within 1 and maxConcurrent, rounds down, ignores NaN', () => {
      const g = gate(5, 1);
      g.setLimit(0);
      expect(g.limit).toBe(1);
      g.setLimit(-3);
      expect(g.limit).toBe(1);
      g.setLimit(2.99);
      expect(g.limit).toBe(2);
      g.setLimit(1e9);
      expect(g.limit).toBe(5);
      g.setLimit(Number.POSITIVE_INFINITY);
      expect(g.limit).toBe(5);
      g.setLimit(3);
      g.setLimit(Number.NaN);
      expect(g.limit).toBe(3);
    });

    it('a lower limit admits fewer at once, synchronously', () => {
      const g = gate(4, 3);
      g.setLimit(2);
      expect(g.tryAcquire()).toBe(true);
      expect(g.tryAcquire()).toBe(true);
      expect(g.tryAcquire()).toBe(false);
      expect(g.inUse).toBe(2);
      // Room to wait is unchanged by the limit.
      expect(g.canAdmit).toBe(true);
    });

    it('a raise hands the new permits to waiters at once, oldest first, and no more', async () => {
      const g = gate(5, 10);
      g.setLimit(1);
      g.tryAcquire();
      const order: number[] = [];
      const waits = waitAll(g, 4, order);
      g.setLimit(3);
      await Promise.resolve();
      await Promise.resolve();
      expect(order).toEqual([0, 1]);
      expect(g.inUse).toBe(3);
      expect(g.waiting).toBe(2);
      // Up to the ceiling: the two left get in, nothing is handed out twice.
      g.setLimit(100);
      await Promise.all(waits);
      expect(order).toEqual([0, 1, 2, 3]);
      expect(g.inUse).toBe(5);
      expect(g.waiting).toBe(0);
    });

    it('a cut takes no permit back; permits that return are held back until below the limit', async () => {
      const g = gate(4, 10);
      for (let i = 0; i < 4; i++) g.tryAcquire();
      const order: number[] = [];
      const waits = waitAll(g, 3, order);
      g.setLimit(2);
      expect(g.inUse).toBe(4);
      g.release(); // 3 held, limit 2: kept back
      g.release(); // 2 held: kept back
      await Promise.resolve();
      expect(order).toEqual([]);
      expect(g.inUse).toBe(2);
      expect(g.waiting).toBe(3);
      g.release(); // 1 held: the oldest waiter gets it
      await Promise.resolve();
      expect(order).toEqual([0]);
      expect(g.inUse).toBe(2);
      // A newcomer does not jump the queue while the gate sits at its limit.
      expect(g.tryAcquire()).toBe(false);
      g.release();
      g.release();
      await Promise.all(waits);
      expect(order).toEqual([0, 1, 2]);
      expect(g.inUse).toBe(2);
    });

    it('a cut to 1 and back up never loses or duplicates a permit', async () => {
      const g = gate(3, 10);
      for (let i = 0; i < 3; i++) g.tryAcquire();
      g.setLimit(1);
      const order: number[] = [];
      const waits = waitAll(g, 2, order);
      g.release();
      g.release();
      g.release(); // 0 held: one waiter in
      await Promise.resolve();
      expect(order).toEqual([0]);
      expect(g.inUse).toBe(1);
      g.setLimit(3); // the other waiter in, one permit free
      await Promise.all(waits);
      expect(g.inUse).toBe(2);
      expect(g.tryAcquire()).toBe(true);
      expect(g.tryAcquire()).toBe(false);
    });

    it('a raise skips waiters that timed out and never resolves them later', async () => {
      const g = gate(3, 10, 100);
      g.setLimit(1);
      g.tryAcquire();
      const late = g.acquire().catch((e: unknown) => e);
      const patient = g.acquire(undefined, 10_000);
      await vi.advanceTimersByTimeAsync(100);
      expect(await late).toBeInstanceOf(AcquireTimeoutError);
      expect(g.waiting).toBe(1);
      g.setLimit(3);
      await expect(patient).resolves.toBeUndefined();
      expect(g.inUse).toBe(2);
      expect(g.waiting).toBe(0);
    });

    it('a waiter let in by a raise keeps its permit when its signal fires afterwards', async () => {
      const g = gate(2, 10);
      g.setLimit(1);
      g.tryAcquire();
      const controller = new AbortController();
      const waiting = g.acquire(controller.signal);
      g.setLimit(2);
      controller.abort(new Error('too late'));
      await expect(waiting).resolves.toBeUndefined();
      expect(g.inUse).toBe(2);
      expect(g.waiting).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('an aborted waiter frees its place while the gate sits above a cut limit', async () => {
      const g = gate(3, 1);
      for (let i = 0; i < 3; i++) g.tryAcquire();
      g.setLimit(1);
      const controller = new AbortController();
      const waiting = g.acquire(controller.signal);
      expect(g.isFull).toBe(true);
      controller.abort();
      await expect(waiting).rejects.toBeInstanceOf(AbortedError);
      expect(g.isFull).toBe(false);
      for (let i = 0; i < 5; i++) g.release();
      expect(g.inUse).toBe(0);
    });

    it('idle() resolves after a cut once every permit is back', async () => {
      const g = gate(3, 5);
      for (let i = 0; i < 3; i++) g.tryAcquire();
      g.setLimit(1);
      let idle = false;
      const done = g.idle().then(() => {
        idle = true;
      });
      g.release();
      g.release();
      await Promise.resolve();
      expect(idle).toBe(false);
      g.release();
      await done;
      expect(idle).toBe(true);
    });

    it('after rejectAll a raise lets nobody in', async () => {
      const g = gate(3, 5);
      g.setLimit(1);
      g.tryAcquire();
      const waits = [g.acquire(), g.acquire()].map((w) => w.catch((e: unknown) => e));
      g.rejectAll(() => new QueueFullError('ep', 5));
      g.setLimit(3);
      for (const w of await Promise.all(waits)) expect(w).toBeInstanceOf(QueueFullError);
      expect(g.inUse).toBe(1);
      expect(g.waiting).toBe(0);
    });

    it('queue-full is decided by the waiters, not the limit', async () => {
      const g = gate(4, 1);
      g.setLimit(1);
      g.tryAcquire();
      const a = g.acquire();
      await expect(g.acquire()).rejects.toBeInstanceOf(QueueFullError);
      g.setLimit(2);
      await a;
      expect(g.inUse).toBe(2);
    });

    it('random operations keep every count consistent (seeded)', async () => {
      // A model of what must hold whatever the order: permits held never negative nor above
      // maxConcurrent; while anyone waits, no permit is free under the limit; every waiter settles
      // once; grants minus returns equals what is held.
      let seed = 12345;
      const rand = () => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        return seed / 2_147_483_648;
      };
      const g = gate(6, 8, 50);
      let holders = 0;
      let settledTwice = 0;
      const pending: Array<{ controller: AbortController; settled: number }> = [];
      for (let step = 0; step < 4_000; step++) {
        const r = rand();
        if (r < 0.25) {
          if (g.tryAcquire()) holders++;
        } else if (r < 0.45) {
          const entry = { controller: new AbortController(), settled: 0 };
          pending.push(entry);
          g.acquire(entry.controller.signal).then(
            () => {
              if (entry.settled++ > 0) settledTwice++;
              holders++;
            },
            () => {
              if (entry.settled++ > 0) settledTwice++;
            },
          );
        } else if (r < 0.7) {
          if (holders > 0) {
            holders--;
            g.release();
          }
        } else if (r < 0.85) {
          g.setLimit(Math.floor(rand() * 9) - 1);
        } else if (r < 0.92) {
          pending[Math.floor(rand() * pending.length)]?.controller.abort();
        } else {
          await vi.advanceTimersByTimeAsync(Math.floor(rand() * 30));
        }
        await Promise.resolve();
        await Promise.resolve();
        expect(g.inUse).toBeGreaterThanOrEqual(0);
        expect(g.inUse).toBeLessThanOrEqual(6);
        expect(g.waiting).toBeGreaterThanOrEqual(0);
        expect(g.waiting).toBeLessThanOrEqual(8);
        if (g.waiting > 0) expect(g.inUse).toBeGreaterThanOrEqual(g.limit);
        expect(g.inUse).toBe(holders);
      }
      // Drain: everyone waiting eventually gets in or times out; all permits return.
      g.setLimit(6);
      await vi.advanceTimersByTimeAsync(100);
      while (holders > 0) {
        holders--;
        g.release();
        await Promise.resolve();
        await Promise.resolve();
      }
      await vi.advanceTimersByTimeAsync(100);
      expect(settledTwice).toBe(0);
      expect(pending.every((p) => p.settled === 1)).toBe(true);
      expect(g.inUse).toBe(0);
      expect(g.waiting).toBe(0);
      await g.idle();
    });
  });

  describe('shedding by queue delay (maxQueueDelayMs)', () => {
    const delayGate = (maxQueueDelayMs: number, maxWaiting = 100) =>
      new Gate({
        name: 'ep',
        maxConcurrent: 1,
        maxWaiting,
        acquireTimeout: 10_000,
        maxQueueDelayMs,
      });

    it('fake timers drive performance.now() here', () => {
      const before = performance.now();
      vi.advanceTimersByTime(50);
      expect(performance.now() - before).toBe(50);
    });

    it('a statement time answered recently (served) makes a queue behind it overload, not a hang', async () => {
      const g = delayGate(20);
      g.tryAcquire();
      g.served(30, performance.now()); // statements here take 30 ms
      g.release();
      g.tryAcquire(); // the next one starts
      const a = g.acquire();
      vi.advanceTimersByTime(25);
      // Nothing back for 25 ms: no longer than twice the statement time, so the queue stands.
      expect(g.isFull).toBe(true);
      await expect(g.acquire()).rejects.toBeInstanceOf(QueueFullError);
      vi.advanceTimersByTime(40);
      // 65 ms: past twice 30 ms (halved a little since): a hang, left to the acquire timeout.
      expect(g.isFull).toBe(false);
      g.release();
      await a;
      g.release();
    });

    it('queues a burst that arrives at once, however many, up to maxWaiting', async () => {
      const g = delayGate(20, 5);
      g.tryAcquire();
      const waits = Array.from({ length: 5 }, () => g.acquire());
      expect(g.waiting).toBe(5);
      expect(g.isFull).toBe(true); // by count
      await expect(g.acquire()).rejects.toThrow('(5 waiting)');
      for (let i = 0; i < 6; i++) g.release();
      await Promise.all(waits);
    });

    it('refuses new calls while the oldest waiter is older than the bound and permits come back', async () => {
      const g = delayGate(20);
      g.tryAcquire();
      const a = g.acquire();
      vi.advanceTimersByTime(15);
      const b = g.acquire(); // the queue is 15 ms old: admitted
      vi.advanceTimersByTime(10);
      // 25 ms old, but no permit came back within 20 ms: a hang, not overload.
      expect(g.isFull).toBe(false);
      g.release(); // `a` runs; `b`, 10 ms old, is the oldest
      await a;
      expect(g.queueDelay()).toBe(10);
      expect(g.isFull).toBe(false);
      vi.advanceTimersByTime(11);
      // `b` has waited 21 ms and a permit came back 11 ms ago: overload, refused at once.
      const c = g.acquire();
      await expect(c).rejects.toBeInstanceOf(QueueFullError);
      await expect(c).rejects.toThrow(
        'Wait queue of endpoint "ep" is full: its oldest call has waited 21 ms and a new one would wait about 22 ms (queue.maxQueueDelayMs 20)',
      );
      expect(g.canAdmit).toBe(false);
      expect(g.waiting).toBe(1); // the refused call took no place
      g.release(); // `b` runs: the queue is empty and takes calls again
      await b;
      expect(g.isFull).toBe(false);
      expect(g.canAdmit).toBe(true);
      const d = g.acquire();
      vi.advanceTimersByTime(50);
      // 50 ms old, but the last permit came back 50 ms ago, past the bound and four mean gaps
      // (the one measured, 11 ms): nothing completes, a hang, so no shedding.
      expect(g.isFull).toBe(false);
      g.release();
      await d;
      g.release();
    });

    it('a waiter that gives up no longer counts as the oldest', async () => {
      const g = delayGate(20);
      g.tryAcquire();
      const old = g.acquire();
      vi.advanceTimersByTime(30);
      const young = g.acquire();
      vi.advanceTimersByTime(1);
      g.release(); // a permit came back (to `old`, which holds it now)
      await old;
      g.release(); // `old` is done: `young`, 1 ms old, runs
      await young;
      const next = g.acquire();
      vi.advanceTimersByTime(30);
      const abandoned = new AbortController();
      const gaveUp = g.acquire(abandoned.signal);
      abandoned.abort();
      await expect(gaveUp).rejects.toBeInstanceOf(AbortedError);
      expect(g.queueDelay()).toBe(30); // `next` is still the oldest
      g.release();
      await next;
      expect(g.waiting).toBe(0);
      expect(g.queueDelay()).toBe(0);
      g.release();
    });

    it('off (0) keeps no arrival times and only the count bounds the queue', async () => {
      const g = delayGate(0, 2);
      g.tryAcquire();
      const a = g.acquire();
      vi.advanceTimersByTime(5_000);
      g.release();
      await a;
      const b = g.acquire();
      vi.advanceTimersByTime(5_000);
      expect(g.queueDelay()).toBe(0);
      expect(g.isFull).toBe(false);
      g.release();
      await b;
    });
  });
});
