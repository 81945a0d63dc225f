/**
 * Connection pacing after an outage: one connect in flight at first, twice as many after each
 * round that all connected, up to the pool's max, when pacing ends; a failure starts again at
 * one. Waiters wake once, in order, and a cancelled one never does.
 *
 * The last block drives the pacer through a ResilientPool over a fake pool whose connects are
 * completed by the test, so the number of connects in flight can be watched.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConnectPacer, MUST_WAIT, UNPACED } from '../../src/endpoint/connect-pacer.js';
import type { PgClientLike, PgPoolLike } from '../../src/pg-like.js';
import { FakePool, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

/** Opens `n` connects; returns their tickets (asserting each was allowed). */
function open(pacer: ConnectPacer, n: number): number[] {
  return Array.from({ length: n }, () => {
    const ticket = pacer.tryOpen();
    expect(ticket).toBeGreaterThanOrEqual(0);
    return ticket;
  });
}

describe('connect pacer', () => {
  it('does not pace before any outage', () => {
    const pacer = new ConnectPacer(10, true);
    expect(pacer.active).toBe(false);
    expect(pacer.tryOpen()).toBe(UNPACED);
    expect(pacer.currentAllowance).toBeNull();
  });

  it('never paces when disabled', () => {
    const pacer = new ConnectPacer(10, false);
    pacer.restart();
    expect(pacer.active).toBe(false);
    expect(pacer.tryOpen()).toBe(UNPACED);
  });

  it('allows 1, then 2, 4, 8 after each round that all connected, and stops at the max', () => {
    const pacer = new ConnectPacer(10, true);
    pacer.restart();
    const rounds: number[] = [];
    while (pacer.active) {
      const allowance = pacer.currentAllowance!;
      const tickets = open(pacer, allowance);
      expect(pacer.tryOpen()).toBe(MUST_WAIT);
      rounds.push(allowance);
      for (const t of tickets) pacer.settled(t, true);
    }
    expect(rounds).toEqual([1, 2, 4, 8]);
    expect(pacer.tryOpen()).toBe(UNPACED);
  });

  it('starts again at one after a failed connect', () => {
    const pacer = new ConnectPacer(10, true);
    pacer.restart();
    pacer.settled(open(pacer, 1)[0]!, true);
    const [a, b] = open(pacer, 2);
    pacer.settled(a!, false);
    expect(pacer.currentAllowance).toBe(1);
    // b is still in flight and takes the one place.
    expect(pacer.tryOpen()).toBe(MUST_WAIT);
    pacer.settled(b!, true);
    expect(pacer.currentAllowance).toBe(2);
  });

  it('forgets the attempts of an earlier outage: their settling changes nothing', () => {
    const pacer = new ConnectPacer(10, true);
    pacer.restart();
    const [old] = open(pacer, 1);
    pacer.restart();
    const [fresh] = open(pacer, 1);
    pacer.settled(old!, true);
    expect(pacer.currentAllowance).toBe(1);
    expect(pacer.tryOpen()).toBe(MUST_WAIT);
    pacer.settled(fresh!, true);
    expect(pacer.currentAllowance).toBe(2);
  });

  it('never counts below zero, even if a ticket is settled twice', () => {
    const pacer = new ConnectPacer(100, true);
    pacer.restart();
    const [t] = open(pacer, 1);
    pacer.settled(t!, false);
    pacer.settled(t!, false);
    pacer.settled(t!, true);
    // One place, not two: the extra settles did not free phantom places.
    open(pacer, 1);
    expect(pacer.tryOpen()).toBe(MUST_WAIT);
  });

  it('ends pacing at once for a pool of one', () => {
    const pacer = new ConnectPacer(1, true);
    pacer.restart();
    pacer.settled(open(pacer, 1)[0]!, true);
    expect(pacer.active).toBe(false);
  });

  it('wakes each waiter once, in order, when a connect settles or a client comes back', () => {
    const pacer = new ConnectPacer(10, true);
    pacer.restart();
    const [t] = open(pacer, 1);
    const woken: string[] = [];
    pacer.wait(() => woken.push('a'));
    pacer.wait(() => woken.push('b'));
    expect(pacer.waiting).toBe(2);
    pacer.clientReturned();
    expect(woken).toEqual(['a', 'b']);
    expect(pacer.waiting).toBe(0);
    pacer.clientReturned();
    pacer.settled(t!, true);
    expect(woken).toEqual(['a', 'b']);
    expect(pacer.waited).toBe(2);
  });

  it('never wakes a cancelled waiter, and cancelling twice is harmless', () => {
    const pacer = new ConnectPacer(10, true);
    pacer.restart();
    const woken: string[] = [];
    const a = pacer.wait(() => woken.push('a'));
    pacer.wait(() => woken.push('b'));
    a.cancel();
    a.cancel();
    expect(pacer.waiting).toBe(1);
    pacer.clientReturned();
    expect(woken).toEqual(['b']);
  });

  it('lets a woken waiter wait again without being woken twice by the same wake', () => {
    const pacer = new ConnectPacer(10, true);
    pacer.restart();
    open(pacer, 1);
    let wakes = 0;
    const again = () => {
      wakes++;
      pacer.wait(again);
    };
    pacer.wait(again);
    pacer.clientReturned();
    expect(wakes).toBe(1);
    expect(pacer.waiting).toBe(1);
    pacer.clientReturned();
    expect(wakes).toBe(2);
  });

  it('wakes the waiters when a new outage restarts pacing (one of them may open now)', () => {
    const pacer = new ConnectPacer(10, true);
    pacer.restart();
    open(pacer, 1);
    const woken: string[] = [];
    pacer.wait(() => woken.push('a'));
    pacer.restart();
    expect(woken).toEqual(['a']);
    expect(pacer.tryOpen()).toBeGreaterThanOrEqual(0);
  });
});

/**
 * A pool-like whose connects stay pending until the test lets them through, so connects in flight
 * can be counted. It opens a connection when it has no idle client, as pg-pool does.
 */
class GatedPool extends FakePool {
  readonly pending: Array<{ cb: (err?: Error) => void }> = [];
  opened = 0;
  inFlightMax = 0;
  private readonly base = (callback: Parameters<FakePool['connect']>[0]) =>
    super.connect(callback as never);
  private gating = false;

  gate(on: boolean): void {
    this.gating = on;
  }

  override connect(): Promise<PgClientLike>;
  override connect(
    callback: (err: Error | undefined, client: PgClientLike | undefined, done: () => void) => void,
  ): void;
  override connect(
    callback?: (err: Error | undefined, client: PgClientLike | undefined, done: () => void) => void,
  ): Promise<PgClientLike> | undefined {
    if (callback === undefined) return super.connect();
    if (!this.gating || this.idleCount > 0) {
      this.base(callback);
      return undefined;
    }
    this.opened++;
    this.pending.push({
      cb: (err) => (err ? callback(err, undefined, () => {}) : this.base(callback)),
    });
    this.inFlightMax = Math.max(this.inFlightMax, this.pending.length);
    return undefined;
  }

  /** Lets every pending connect through (or fails them). */
  flush(err?: Error): number {
    const batch = this.pending.splice(0);
    for (const p of batch) p.cb(err);
    return batch.length;
  }
}

describe('connect pacing through the pool (needs the integration patch)', () => {
  const make = usePools();
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('after an outage opens one connection, then 2, 4 ... while the calls wait their turn', async () => {
    const primary = new GatedPool('p', 8);
    const db = make({
      primary: primary as unknown as PgPoolLike,
      health: { enabled: false },
      breaker: { consecutiveFailures: 1, resetTimeout: 100 },
      retry: { retries: 0 },
    });
    // The outage: a refused connect opens the circuit, which restarts pacing.
    primary.connectError = socketError('ECONNREFUSED');
    await expect(db.query('SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    primary.connectError = undefined;
    await vi.advanceTimersByTimeAsync(150);
    primary.gate(true);
    // The half-open probe opens the one connection allowed.
    const probe = db.query('SELECT 1');
    await vi.advanceTimersByTimeAsync(1);
    expect(primary.flush()).toBe(1);
    await probe;
    // Eight at once: one takes the idle client, the others may open two, then four, ...
    let settled = 0;
    const calls = Array.from({ length: 8 }, () =>
      db.query('SELECT 1').finally(() => {
        settled++;
      }),
    );
    const rounds: number[] = [];
    for (let i = 0; i < 50 && settled < calls.length; i++) {
      await vi.advanceTimersByTimeAsync(1);
      const n = primary.flush();
      if (n > 0) rounds.push(n);
    }
    await Promise.all(calls);
    expect(rounds.length).toBeGreaterThan(0);
    expect(rounds[0]).toBeLessThanOrEqual(2);
    expect(Math.max(...rounds)).toBeLessThanOrEqual(4);
    expect(db.stats().endpoints[0]!.rejected['acquire-timeout']).toBe(0);
  });

  it('opens freely when nothing went wrong: all eight connects at once', async () => {
    const primary = new GatedPool('p', 8);
    const db = make({ primary: primary as unknown as PgPoolLike, health: { enabled: false } });
    primary.gate(true);
    const calls = Array.from({ length: 8 }, () => db.query('SELECT 1'));
    await vi.advanceTimersByTimeAsync(1);
    expect(primary.flush()).toBe(8);
    await Promise.all(calls);
  });

  it('a call waiting for the allowance gives up within its acquire timeout, counted as local', async () => {
    const primary = new GatedPool('p', 8);
    const db = make({
      primary: primary as unknown as PgPoolLike,
      health: { enabled: false },
      breaker: { consecutiveFailures: 3, resetTimeout: 100 },
      queue: { acquireTimeout: 500 },
      retry: { retries: 0 },
    });
    primary.connectError = socketError('ECONNREFUSED');
    for (let i = 0; i < 3; i++) await expect(db.query('SELECT 1')).rejects.toThrow();
    expect(db.stats().endpoints[0]!.breaker).toBe('open');
    primary.connectError = undefined;
    await vi.advanceTimersByTimeAsync(150);
    primary.gate(true);
    const probe = db.query('SELECT 1');
    await vi.advanceTimersByTimeAsync(1);
    primary.flush();
    await probe;
    // Hold the idle client; three more calls: two may connect (and hang), one waits on us.
    const held = await db.connect();
    const waiting = Array.from({ length: 3 }, () =>
      db.query('SELECT 1').then(
        () => 'ok',
        (err: { code?: string }) => err.code,
      ),
    );
    await vi.advanceTimersByTimeAsync(1);
    expect(primary.pending).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(600);
    expect(await Promise.all(waiting)).toEqual([
      'E_ACQUIRE_TIMEOUT',
      'E_ACQUIRE_TIMEOUT',
      'E_ACQUIRE_TIMEOUT',
    ]);
    // The two connects the server did not answer count against the circuit; the wait for our
    // own allowance does not (three would have opened it).
    expect(db.stats().endpoints[0]!.breaker).toBe('closed');
    held.release();
    primary.flush(new Error('late'));
  });
});
