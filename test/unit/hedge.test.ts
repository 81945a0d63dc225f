/**
 * Hedged reads (src/routing/hedge*.ts), with fake timers: the race of two attempts, the budget,
 * the delay, and where a hedge may go on the pool's endpoints. Attempts are deferreds that honour
 * their signal the way the endpoint's pipeline does (an abort rejects them with AbortedError, or
 * with the signal's TimeoutError).
 */
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AbortSignalLike } from '../../src/endpoint/abort-signal-like.js';
import { ADMITTED, type Admission, refused } from '../../src/endpoint/admission.js';
import type { Endpoint, Statement } from '../../src/endpoint/endpoint.js';
import { abortError, ConfigError, TimeoutError } from '../../src/errors.js';
import type { ResilientPool, ResilientPoolOptions } from '../../src/index.js';
import { DEFAULTS } from '../../src/options/defaults.js';
import {
  HEDGE_DEFAULTS,
  type ResolvedHedgeOptions,
  resolveHedgeOptions,
} from '../../src/options/hedge.js';
import type { QueryResultLike } from '../../src/pg-like.js';
import { createBalancer } from '../../src/routing/balancers/create-balancer.js';
import { type HedgedCall, Hedging } from '../../src/routing/hedge.js';
import { HedgeBudget } from '../../src/routing/hedge-budget.js';
import { HedgeDelay, type QuantileSource } from '../../src/routing/hedge-delay.js';
import { hedge, LOST_THE_RACE } from '../../src/routing/hedge-race.js';
import { Router } from '../../src/routing/router.js';
import { FakePool, pgError, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Lets promise callbacks run without moving the fake clock. */
const flush = () => vi.advanceTimersByTimeAsync(0);

type Outcome<T> =
  | { state: 'pending' }
  | { state: 'resolved'; value: T }
  | { state: 'rejected'; error: unknown };

function track<T>(promise: Promise<T>): { readonly outcome: Outcome<T> } {
  const box: { outcome: Outcome<T> } = { outcome: { state: 'pending' } };
  promise.then(
    (value) => {
      box.outcome = { state: 'resolved', value };
    },
    (error: unknown) => {
      box.outcome = { state: 'rejected', error };
    },
  );
  return box;
}

/**
 * An attempt the test settles by hand. As the endpoint's pipeline does, an abort of its signal
 * rejects it, and it stops listening to its signal when it settles (`leaveListener` breaks that).
 */
class Attempt<T = string> {
  readonly starts: AbortSignalLike[] = [];
  aborts = 0;
  abortReasons: unknown[] = [];
  private settle: { resolve(v: T): void; reject(e: unknown): void } | undefined;

  constructor(private readonly leaveListener = false) {}

  readonly run = (signal: AbortSignalLike): Promise<T> => {
    this.starts.push(signal);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.aborts++;
        this.abortReasons.push(signal.reason);
        reject(abortError('fake', signal));
      };
      const detach = () => {
        if (!this.leaveListener) signal.removeEventListener('abort', onAbort);
      };
      this.settle = {
        resolve: (v) => {
          detach();
          resolve(v);
        },
        reject: (e) => {
          detach();
          reject(e);
        },
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  };

  get started(): boolean {
    return this.starts.length > 0;
  }

  resolve(value: T): void {
    this.settle?.resolve(value);
  }

  reject(err: unknown): void {
    this.settle?.reject(err);
  }
}

describe('hedge(): the race', () => {
  it('returns the first answer before the delay; the hedge never starts and no timer is left', async () => {
    const first = new Attempt();
    const second = new Attempt();
    const race = track(hedge(first.run, second.run, 20, undefined));
    await vi.advanceTimersByTimeAsync(19);
    first.resolve('one');
    await flush();
    expect(race.outcome).toEqual({ state: 'resolved', value: 'one' });
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(second.started).toBe(false);
    expect(first.aborts).toBe(0);
  });

  it('a failure of the first before the delay rejects at once and sends no hedge', async () => {
    const first = new Attempt();
    const second = new Attempt();
    const race = track(hedge(first.run, second.run, 20, undefined));
    const boom = new Error('connection lost');
    first.reject(boom);
    await flush();
    expect(race.outcome).toEqual({ state: 'rejected', error: boom });
    await vi.advanceTimersByTimeAsync(100);
    expect(second.started).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts the hedge exactly at the delay, not a millisecond before', async () => {
    const first = new Attempt();
    const second = new Attempt();
    hedge(first.run, second.run, 20, undefined).catch(() => {});
    await vi.advanceTimersByTimeAsync(19);
    expect(second.started).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(second.starts).toHaveLength(1);
    // Each side has its own signal.
    expect(second.starts[0]).not.toBe(first.starts[0]);
  });

  it('the hedge wins: its answer is returned; the first, still running after its grace, is aborted exactly once', async () => {
    const first = new Attempt();
    const second = new Attempt();
    const secondWon = vi.fn();
    const loserCancelled = vi.fn();
    const events = { secondWon, loserCancelled };
    const race = track(hedge(first.run, second.run, 20, undefined, events, 100));
    await vi.advanceTimersByTimeAsync(20);
    second.resolve('two');
    await flush();
    expect(race.outcome).toEqual({ state: 'resolved', value: 'two' });
    expect(secondWon).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(first.aborts).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(first.aborts).toBe(1);
    expect(first.abortReasons).toEqual([LOST_THE_RACE]);
    expect(loserCancelled).toHaveBeenCalledTimes(1);
    expect(second.aborts).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // The aborted loser's late answer changes nothing.
    first.resolve('late');
    await vi.advanceTimersByTimeAsync(100);
    expect(race.outcome).toEqual({ state: 'resolved', value: 'two' });
    expect(first.aborts).toBe(1);
  });

  it('the first wins after the hedge started: the hedge, still running after its grace, is aborted exactly once', async () => {
    const first = new Attempt();
    const second = new Attempt();
    const secondWon = vi.fn();
    const race = track(hedge(first.run, second.run, 20, undefined, { secondWon }, 50));
    await vi.advanceTimersByTimeAsync(25);
    first.resolve('one');
    await flush();
    expect(race.outcome).toEqual({ state: 'resolved', value: 'one' });
    await vi.advanceTimersByTimeAsync(49);
    expect(second.aborts).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(second.aborts).toBe(1);
    expect(second.abortReasons).toEqual([LOST_THE_RACE]);
    expect(first.aborts).toBe(0);
    expect(secondWon).not.toHaveBeenCalled();
  });

  it('a loser that answers within its grace is never aborted, and its timer is gone', async () => {
    const first = new Attempt();
    const second = new Attempt();
    const loserCancelled = vi.fn();
    const race = track(hedge(first.run, second.run, 20, undefined, { loserCancelled }, 50));
    await vi.advanceTimersByTimeAsync(20);
    second.resolve('two');
    await vi.advanceTimersByTimeAsync(49);
    first.resolve('one, late');
    await flush();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(first.aborts).toBe(0);
    expect(loserCancelled).not.toHaveBeenCalled();
    expect(race.outcome).toEqual({ state: 'resolved', value: 'two' });
  });

  it('a loser that fails within its grace is never aborted either', async () => {
    const first = new Attempt();
    const second = new Attempt();
    hedge(first.run, second.run, 20, undefined, undefined, 50).catch(() => {});
    await vi.advanceTimersByTimeAsync(20);
    second.resolve('two');
    await vi.advanceTimersByTimeAsync(49);
    first.reject(new Error('the loser failed on its own'));
    await vi.advanceTimersByTimeAsync(100);
    expect(first.aborts).toBe(0);
  });

  it('no grace (the default): the loser is aborted as the winner answers, once', async () => {
    const first = new Attempt();
    const second = new Attempt();
    const loserCancelled = vi.fn();
    const race = track(hedge(first.run, second.run, 20, undefined, { loserCancelled }));
    await vi.advanceTimersByTimeAsync(20);
    second.resolve('two');
    await flush();
    expect(race.outcome).toEqual({ state: 'resolved', value: 'two' });
    expect(first.aborts).toBe(1);
    expect(first.abortReasons).toEqual([LOST_THE_RACE]);
    expect(loserCancelled).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the first failing after the hedge started waits for the hedge and takes its answer', async () => {
    const first = new Attempt();
    const second = new Attempt();
    const race = track(hedge(first.run, second.run, 20, undefined));
    await vi.advanceTimersByTimeAsync(20);
    first.reject(new Error('endpoint declared down'));
    await flush();
    expect(race.outcome.state).toBe('pending');
    second.resolve('two');
    await flush();
    expect(race.outcome).toEqual({ state: 'resolved', value: 'two' });
    expect(first.aborts + second.aborts).toBe(0);
  });

  it('the hedge failing leaves the first to answer alone', async () => {
    const first = new Attempt();
    const second = new Attempt();
    const race = track(hedge(first.run, second.run, 20, undefined));
    await vi.advanceTimersByTimeAsync(20);
    second.reject(new Error('hedge failed'));
    await flush();
    expect(race.outcome.state).toBe('pending');
    first.resolve('one');
    await flush();
    expect(race.outcome).toEqual({ state: 'resolved', value: 'one' });
  });

  it.each([
    ['the first fails first', ['first', 'second'] as const],
    ['the hedge fails first', ['second', 'first'] as const],
  ])("both fail (%s): rejects with the first's error, bothFailed told once", async (_, order) => {
    const first = new Attempt();
    const second = new Attempt();
    const bothFailed = vi.fn();
    const race = track(hedge(first.run, second.run, 20, undefined, { bothFailed }));
    await vi.advanceTimersByTimeAsync(20);
    const errors = { first: new Error('first failed'), second: new Error('hedge failed') };
    for (const side of order) {
      (side === 'first' ? first : second).reject(errors[side]);
      await flush();
    }
    expect(race.outcome).toEqual({ state: 'rejected', error: errors.first });
    expect(bothFailed).toHaveBeenCalledTimes(1);
    expect(bothFailed).toHaveBeenCalledWith(errors.first, errors.second);
  });

  it('a declined hedge leaves the first alone; its later failure rejects the race', async () => {
    const first = new Attempt();
    const second = vi.fn(() => undefined);
    const race = track(hedge(first.run, second, 20, undefined));
    await vi.advanceTimersByTimeAsync(50);
    expect(second).toHaveBeenCalledTimes(1);
    expect(race.outcome.state).toBe('pending');
    const boom = new Error('late failure');
    first.reject(boom);
    await flush();
    expect(race.outcome).toEqual({ state: 'rejected', error: boom });
    // Asked once: the race never tries again.
    await vi.advanceTimersByTimeAsync(100);
    expect(second).toHaveBeenCalledTimes(1);
  });

  it('a hedge that throws synchronously counts as a failed hedge; the first still answers', async () => {
    const first = new Attempt();
    const race = track(
      hedge(
        first.run,
        () => {
          throw new Error('bad hedge');
        },
        20,
        undefined,
      ),
    );
    await vi.advanceTimersByTimeAsync(20);
    first.resolve('one');
    await flush();
    expect(race.outcome).toEqual({ state: 'resolved', value: 'one' });
  });

  it('a first that throws synchronously rejects with that error, no hedge', async () => {
    const second = new Attempt();
    const boom = new Error('sync');
    const race = track(
      hedge(
        () => {
          throw boom;
        },
        second.run,
        20,
        undefined,
      ),
    );
    await flush();
    expect(race.outcome).toEqual({ state: 'rejected', error: boom });
    await vi.advanceTimersByTimeAsync(50);
    expect(second.started).toBe(false);
  });

  it('the caller aborting before the delay aborts the first with its reason; no hedge follows', async () => {
    const caller = new AbortController();
    const first = new Attempt();
    const second = new Attempt();
    const race = track(hedge(first.run, second.run, 20, caller.signal));
    await vi.advanceTimersByTimeAsync(5);
    const reason = new Error('user gave up');
    caller.abort(reason);
    await flush();
    expect(first.abortReasons).toEqual([reason]);
    expect(race.outcome.state).toBe('rejected');
    expect((race.outcome as { error: { code?: string } }).error.code).toBe('E_ABORTED');
    await vi.advanceTimersByTimeAsync(100);
    expect(second.started).toBe(false);
  });

  it('the caller aborting after the hedge started aborts both, each once, and rejects once both failed', async () => {
    const caller = new AbortController();
    const first = new Attempt();
    const second = new Attempt();
    const race = track(hedge(first.run, second.run, 20, caller.signal));
    await vi.advanceTimersByTimeAsync(20);
    const deadline = new TimeoutError(30);
    caller.abort(deadline);
    await flush();
    expect(first.aborts).toBe(1);
    expect(second.aborts).toBe(1);
    // A deadline ends the read as it would unhedged: with the TimeoutError itself.
    expect(race.outcome).toEqual({ state: 'rejected', error: deadline });
  });

  it('a caller signal aborted from the start: the first fails at once, no timer armed', async () => {
    const caller = new AbortController();
    caller.abort(new Error('already'));
    const first = new Attempt();
    const second = new Attempt();
    const race = track(hedge(first.run, second.run, 20, caller.signal));
    expect(vi.getTimerCount()).toBe(0);
    await flush();
    expect(first.aborts).toBe(1);
    expect(race.outcome.state).toBe('rejected');
    expect(second.started).toBe(false);
  });

  it("detaches from the caller's signal when it settles; a later abort touches nothing", async () => {
    const caller = new AbortController();
    const first = new Attempt();
    const second = new Attempt();
    const race = track(hedge(first.run, second.run, 20, caller.signal));
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(20);
    second.resolve('two');
    await flush();
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
    caller.abort(new Error('too late'));
    await vi.advanceTimersByTimeAsync(20);
    // The loser was aborted once, by the race; the caller's late abort reached neither side.
    expect(first.aborts).toBe(1);
    expect(first.abortReasons).toEqual([LOST_THE_RACE]);
    expect(second.aborts).toBe(0);
    expect(race.outcome).toEqual({ state: 'resolved', value: 'two' });
  });

  it('each side of each race has a signal of its own: a later race never sees an earlier abort', async () => {
    const a = new Attempt();
    const raceA = track(hedge(a.run, new Attempt().run, 20, undefined));
    a.resolve('a');
    await flush();
    expect(raceA.outcome.state).toBe('resolved');
    const b = new Attempt();
    const bSecond = new Attempt();
    hedge(b.run, bSecond.run, 20, undefined).catch(() => {});
    expect(b.starts[0]).not.toBe(a.starts[0]);
    // b loses to its hedge: its signal is aborted, and the next race's is not.
    await vi.advanceTimersByTimeAsync(20);
    expect(bSecond.starts[0]).not.toBe(b.starts[0]);
    bSecond.resolve('hedge');
    await vi.advanceTimersByTimeAsync(20);
    expect(b.starts[0]?.aborted).toBe(true);
    const c = new Attempt();
    hedge(c.run, new Attempt().run, 20, undefined).catch(() => {});
    expect(c.starts[0]?.aborted).toBe(false);
  });

  it("the caller's abort after its first settled reaches only its own race", async () => {
    const callerA = new AbortController();
    const a = new Attempt();
    const aSecond = new Attempt();
    const raceA = track(hedge(a.run, aSecond.run, 20, callerA.signal));
    await vi.advanceTimersByTimeAsync(20);
    // a fails after its hedge started: the race waits for the hedge.
    a.reject(new Error('a failed'));
    await flush();
    const b = new Attempt();
    const raceB = track(hedge(b.run, new Attempt().run, 20, undefined));
    callerA.abort(new Error('caller A gave up'));
    await flush();
    expect(aSecond.aborts).toBe(1);
    expect(b.aborts).toBe(0);
    expect(raceB.outcome.state).toBe('pending');
    expect(raceA.outcome.state).toBe('rejected');
  });

  it('the loser rejecting after the race settled is never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const record = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', record);
    try {
      // A loser that ignores its abort and fails on its own later.
      let failLoser: (err: Error) => void = () => {};
      const stubborn = () =>
        new Promise<string>((_, reject) => {
          failLoser = reject;
        });
      const second = new Attempt();
      const race = track(hedge(stubborn, second.run, 20, undefined));
      await vi.advanceTimersByTimeAsync(20);
      second.resolve('two');
      await flush();
      failLoser(new Error('loser failed late'));
      await flush();
      vi.useRealTimers();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(race.outcome).toEqual({ state: 'resolved', value: 'two' });
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
    }
  });

  it("the pool's end cuts a loser's grace short: aborted at once, its listener gone", async () => {
    const lifetime = new AbortController();
    const first = new Attempt();
    const second = new Attempt();
    const loserCancelled = vi.fn();
    const race = track(
      hedge(first.run, second.run, 20, undefined, { loserCancelled }, 1_000, lifetime.signal),
    );
    await vi.advanceTimersByTimeAsync(20);
    second.resolve('two');
    await flush();
    expect(getEventListeners(lifetime.signal, 'abort')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(first.aborts).toBe(0);
    lifetime.abort(new Error('end()'));
    await flush();
    expect(first.aborts).toBe(1);
    expect(first.abortReasons).toEqual([LOST_THE_RACE]);
    expect(loserCancelled).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(lifetime.signal, 'abort')).toHaveLength(0);
    expect(race.outcome).toEqual({ state: 'resolved', value: 'two' });
  });

  it("a loser settling within its grace stops listening to the pool's end", async () => {
    const lifetime = new AbortController();
    const first = new Attempt();
    const second = new Attempt();
    hedge(first.run, second.run, 20, undefined, undefined, 1_000, lifetime.signal).catch(() => {});
    await vi.advanceTimersByTimeAsync(20);
    first.resolve('one');
    await flush();
    expect(getEventListeners(lifetime.signal, 'abort')).toHaveLength(1);
    second.resolve('two, late');
    await flush();
    expect(getEventListeners(lifetime.signal, 'abort')).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
    lifetime.abort(new Error('end()'));
    expect(second.aborts).toBe(0);
  });

  it('the pool already ending when the winner answers: the loser gets no grace', async () => {
    const lifetime = new AbortController();
    const first = new Attempt();
    const second = new Attempt();
    hedge(first.run, second.run, 20, undefined, undefined, 1_000, lifetime.signal).catch(() => {});
    await vi.advanceTimersByTimeAsync(20);
    lifetime.abort(new Error('end()'));
    second.resolve('two');
    await flush();
    expect(first.aborts).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(lifetime.signal, 'abort')).toHaveLength(0);
  });
});

describe('HedgeBudget', () => {
  it('allows the minimum per window with no reads at all, then refuses', () => {
    const budget = new HedgeBudget(5, 2);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('allows the share of reads: 5% of 100 is 5', () => {
    const budget = new HedgeBudget(5, 0);
    for (let i = 0; i < 100; i++) budget.recordRead();
    const granted = Array.from({ length: 10 }, () => budget.tryWithdraw()).filter(Boolean);
    expect(granted).toHaveLength(5);
  });

  it('is the larger of the share and the minimum, not their sum', () => {
    const budget = new HedgeBudget(5, 3);
    for (let i = 0; i < 100; i++) budget.recordRead();
    const granted = Array.from({ length: 20 }, () => budget.tryWithdraw()).filter(Boolean);
    expect(granted).toHaveLength(5);
  });

  it('0% with no minimum never hedges', () => {
    const budget = new HedgeBudget(0, 0);
    for (let i = 0; i < 1_000; i++) budget.recordRead();
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('forgets a bucket once the window has slid past it, and not before', () => {
    const budget = new HedgeBudget(10, 0, 3);
    for (let i = 0; i < 10; i++) budget.recordRead();
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
    budget.rotate();
    budget.rotate();
    // Still in the window: the reads and the hedge of the first bucket both count.
    expect(budget.tryWithdraw()).toBe(false);
    budget.rotate();
    // Slid out: no reads, no hedges; nothing allowed with no minimum.
    expect(budget.tryWithdraw()).toBe(false);
    for (let i = 0; i < 10; i++) budget.recordRead();
    expect(budget.tryWithdraw()).toBe(true);
  });

  it('a hedge spent in an old bucket is given back when it slides out', () => {
    const budget = new HedgeBudget(0, 1, 2);
    expect(budget.tryWithdraw()).toBe(true);
    budget.rotate();
    expect(budget.tryWithdraw()).toBe(false);
    budget.rotate();
    expect(budget.tryWithdraw()).toBe(true);
  });

  it('rejects a window of no buckets', () => {
    expect(() => new HedgeBudget(5, 1, 0)).toThrow(RangeError);
  });
});

class FakeLatency implements QuantileSource {
  calls: number[] = [];
  constructor(public value: number | null) {}
  quantile(q: number): number | null {
    this.calls.push(q);
    return this.value;
  }
}

describe('HedgeDelay', () => {
  const adaptive = { delay: 'adaptive', quantile: 0.95, minDelayMs: 5, maxDelayMs: 500 } as const;

  it('a fixed delay is the delay, whatever the endpoint measured (never asked)', () => {
    const source = new FakeLatency(3);
    const delay = new HedgeDelay({ ...adaptive, delay: 40 });
    expect(delay.for(source)).toBe(40);
    expect(source.calls).toEqual([]);
  });

  it('adaptive: the configured quantile, rounded up to whole ms', () => {
    const source = new FakeLatency(12.2);
    expect(new HedgeDelay(adaptive).for(source)).toBe(13);
    expect(source.calls).toEqual([0.95]);
  });

  it.each([
    [0.4, 5],
    [5, 5],
    [499.5, 500],
    [10_000, 500],
    [null, 500],
    [Number.NaN, 500],
  ])(
    'adaptive: a measured %s ms gives %s ms (floor 5, ceiling 500; the ceiling when unknown)',
    (measured, expected) => {
      expect(new HedgeDelay(adaptive).for(new FakeLatency(measured))).toBe(expected);
    },
  );

  it('adaptive: an endpoint with nothing measured yet is asked again at its next read', () => {
    const fresh = new FakeLatency(null);
    const delay = new HedgeDelay(adaptive);
    expect(delay.for(fresh)).toBe(500);
    fresh.value = 8;
    expect(delay.for(fresh)).toBe(8);
    expect(fresh.calls).toHaveLength(2);
  });

  it('adaptive: computed once per endpoint until refresh(), then again', () => {
    const a = new FakeLatency(20);
    const b = new FakeLatency(30);
    const delay = new HedgeDelay(adaptive);
    expect([delay.for(a), delay.for(a), delay.for(b), delay.for(a)]).toEqual([20, 20, 30, 20]);
    expect(a.calls).toHaveLength(1);
    a.value = 80;
    delay.refresh();
    expect(delay.for(a)).toBe(80);
    expect(a.calls).toHaveLength(2);
  });
});

// ---- Hedging on endpoints -------------------------------------------------------------------

const STATEMENT: Statement = { text: 'SELECT 1', values: undefined, captureToken: false };
const answer = (from: string): QueryResultLike =>
  ({ rows: [{ from }], rowCount: 1 }) as unknown as QueryResultLike;

/** An endpoint as Hedging and the router see it: admission, execution, health, latency. */
class FakeEndpoint {
  readonly weight = 1;
  usable = true;
  inRecovery: boolean | null = null;
  replayLsn: bigint | undefined;
  refuse = false;
  readonly latency = new FakeLatency(null);
  readonly attempts: Attempt<QueryResultLike>[] = [];
  constructor(
    readonly name: string,
    readonly role: 'primary' | 'replica',
  ) {}
  load(): number {
    return 0;
  }
  isUsable(): boolean {
    return this.usable;
  }
  get isHotStandby(): boolean {
    return this.role === 'replica' && this.inRecovery !== false;
  }
  admit(): Admission {
    return this.refuse ? refused(new Error(`${this.name} refused`)) : ADMITTED;
  }
  execute(_admitted: Admission, _s: Statement, signal: AbortSignalLike): Promise<QueryResultLike> {
    const attempt = new Attempt<QueryResultLike>();
    this.attempts.push(attempt);
    return attempt.run(signal);
  }
  /** The latest attempt here. */
  get last(): Attempt<QueryResultLike> {
    const a = this.attempts.at(-1);
    if (a === undefined) throw new Error(`no attempt on ${this.name}`);
    return a;
  }
}

interface Cluster {
  primary: FakeEndpoint;
  r1: FakeEndpoint;
  r2: FakeEndpoint;
  hedging: Hedging;
}

function cluster(
  options: Partial<ResolvedHedgeOptions> = {},
  { fallbackToPrimary = true, replicas = 2 } = {},
): Cluster {
  const primary = new FakeEndpoint('primary', 'primary');
  const r1 = new FakeEndpoint('r1', 'replica');
  const r2 = new FakeEndpoint('r2', 'replica');
  const router = new Router(
    primary as unknown as Endpoint,
    [r1, r2].slice(0, replicas) as unknown as Endpoint[],
    createBalancer<Endpoint>('round-robin'),
    fallbackToPrimary,
  );
  const resolved: ResolvedHedgeOptions = {
    ...HEDGE_DEFAULTS,
    enabled: true,
    delay: 20,
    budgetMinHedges: 100,
    cancelAfterMs: 30,
    ...options,
  };
  return { primary, r1, r2, hedging: new Hedging(resolved, router) };
}

function read(
  c: Cluster,
  first: FakeEndpoint,
  idempotent?: boolean,
  signal?: AbortSignal,
): { readonly outcome: Outcome<QueryResultLike> } {
  const plan = c.hedging.plan(idempotent);
  if (plan === undefined) throw new Error('not hedged');
  return track(c.hedging.run(first as unknown as Endpoint, ADMITTED, STATEMENT, signal, plan));
}

describe('Hedging: which reads, and where the hedge goes', () => {
  it('idempotent as passed: false never hedges; left out, standbys only; true, anywhere', () => {
    const { hedging } = cluster();
    expect(hedging.plan(false)).toBeUndefined();
    expect(hedging.plan(undefined)).toEqual({ mayUseWritable: false, accept: undefined });
    expect(hedging.plan(true)).toEqual({ mayUseWritable: true, accept: undefined });
    expect(hedging.planAfter(false, 10n)).toBeUndefined();
  });

  it('sends the hedge to the other replica, never back to the first; the hedge wins and the first is cancelled', async () => {
    const c = cluster();
    const r = read(c, c.r1);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r1.attempts).toHaveLength(1);
    expect(c.r2.attempts).toHaveLength(1);
    expect(c.primary.attempts).toHaveLength(0);
    c.r2.last.resolve(answer('r2'));
    await flush();
    expect(r.outcome).toEqual({ state: 'resolved', value: answer('r2') });
    // The loser goes on for cancelAfterMs, then is cancelled.
    await vi.advanceTimersByTimeAsync(29);
    expect(c.r1.last.aborts).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(c.r1.last.aborts).toBe(1);
    expect(c.hedging.stats()).toEqual({
      reads: 1,
      sent: 1,
      won: 1,
      cancelled: 1,
      budgetRefused: 0,
      noTarget: 0,
    });
  });

  it('many reads on one replica: every hedge goes to another endpoint', async () => {
    const c = cluster();
    for (let i = 0; i < 10; i++) read(c, c.r2);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r2.attempts).toHaveLength(10);
    expect(c.r1.attempts).toHaveLength(10);
    expect(c.primary.attempts).toHaveLength(0);
  });

  it('the other replica unusable: not to the primary by default (noTarget)', async () => {
    const c = cluster();
    c.r2.usable = false;
    const r = read(c, c.r1);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.primary.attempts).toHaveLength(0);
    expect(c.hedging.counters.noTarget).toBe(1);
    c.r1.last.resolve(answer('r1'));
    await flush();
    expect(r.outcome).toEqual({ state: 'resolved', value: answer('r1') });
  });

  it('the other replica unusable: to the primary when the read is idempotent and fallback is on', async () => {
    const c = cluster();
    c.r2.usable = false;
    read(c, c.r1, true);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.primary.attempts).toHaveLength(1);
  });

  it('never to the primary without fallback, idempotent or not', async () => {
    const c = cluster({}, { fallbackToPrimary: false });
    c.r2.usable = false;
    read(c, c.r1, true);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.primary.attempts).toHaveLength(0);
    expect(c.hedging.counters.noTarget).toBe(1);
  });

  it('a replica found writable takes a hedge only when the read is idempotent', async () => {
    const c = cluster();
    c.r2.inRecovery = false;
    read(c, c.r1);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r2.attempts).toHaveLength(0);
    read(c, c.r1, true);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r2.attempts).toHaveLength(1);
  });

  it('a read on the primary (fallback) is hedged to a replica that became usable', async () => {
    const c = cluster();
    read(c, c.primary);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r1.attempts.length + c.r2.attempts.length).toBe(1);
    expect(c.primary.attempts).toHaveLength(1);
  });

  it('a lone primary (no replicas) has nowhere to hedge to: its reads are not hedged at all', () => {
    const c = cluster({}, { replicas: 0 });
    expect(c.hedging.plan(true)).toBeUndefined();
    expect(c.hedging.plan(undefined)).toBeUndefined();
    expect(c.hedging.planAfter(true, 1n)).toBeUndefined();
  });

  it('a read after a token: only to an endpoint that has replayed it', async () => {
    const c = cluster();
    c.r1.replayLsn = 100n;
    c.r2.replayLsn = 99n;
    const plan = c.hedging.planAfter(undefined, 100n);
    if (plan === undefined) throw new Error('not hedged');
    c.hedging.run(c.r1 as unknown as Endpoint, ADMITTED, STATEMENT, undefined, plan);
    await vi.advanceTimersByTimeAsync(20);
    // r2 is behind and the primary is writable: only r1 met the token, so no hedge.
    expect(c.r2.attempts).toHaveLength(0);
    expect(c.primary.attempts).toHaveLength(0);
    expect(c.hedging.counters.noTarget).toBe(1);
    c.r2.replayLsn = 100n;
    c.hedging.run(c.r1 as unknown as Endpoint, ADMITTED, STATEMENT, undefined, plan);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r2.attempts).toHaveLength(1);
  });

  it('a read after a token pinned to the primary is hedged (idempotent) to no replica behind it', async () => {
    const c = cluster();
    c.r1.replayLsn = 5n;
    const plan = c.hedging.planAfter(true, 100n);
    if (plan === undefined) throw new Error('not hedged');
    c.hedging.run(c.primary as unknown as Endpoint, ADMITTED, STATEMENT, undefined, plan);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r1.attempts.length + c.r2.attempts.length).toBe(0);
  });

  it('a refusal at the second endpoint (a state change since it was chosen) is no hedge', async () => {
    const c = cluster();
    c.r2.refuse = true;
    const r = read(c, c.r1);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r2.attempts).toHaveLength(0);
    expect(c.hedging.counters).toMatchObject({ sent: 0, noTarget: 1 });
    c.r1.last.resolve(answer('r1'));
    await flush();
    expect(r.outcome.state).toBe('resolved');
  });
});

describe('Hedging: budget and delay', () => {
  it('budget exhausted: no hedge, counted, and the read still gets its first answer', async () => {
    const c = cluster({ budgetPercent: 0, budgetMinHedges: 1 });
    read(c, c.r1);
    read(c, c.r1);
    const third = read(c, c.r1);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r2.attempts).toHaveLength(1);
    expect(c.hedging.stats()).toMatchObject({ reads: 3, sent: 1, budgetRefused: 2 });
    c.r1.attempts[2]!.resolve(answer('r1'));
    await flush();
    expect(third.outcome).toEqual({ state: 'resolved', value: answer('r1') });
  });

  it('the budget comes back as the window slides (rotate once a second)', async () => {
    const c = cluster({ budgetPercent: 0, budgetMinHedges: 1 });
    read(c, c.r1);
    read(c, c.r1);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.hedging.counters.budgetRefused).toBe(1);
    for (let i = 0; i < 10; i++) c.hedging.rotate();
    read(c, c.r1);
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r2.attempts).toHaveLength(2);
  });

  it("adaptive: the hedge waits for the first endpoint's p95, not another's", async () => {
    const c = cluster({ delay: 'adaptive', minDelayMs: 5, maxDelayMs: 500 });
    c.r1.latency.value = 42;
    c.r2.latency.value = 7;
    read(c, c.r1);
    await vi.advanceTimersByTimeAsync(41);
    expect(c.r2.attempts).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(c.r2.attempts).toHaveLength(1);
    expect(c.r1.latency.calls).toEqual([0.95]);
  });

  it('adaptive with nothing measured: the ceiling', async () => {
    const c = cluster({ delay: 'adaptive', minDelayMs: 5, maxDelayMs: 300 });
    read(c, c.r1);
    await vi.advanceTimersByTimeAsync(299);
    expect(c.r2.attempts).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(c.r2.attempts).toHaveLength(1);
  });

  it("both sides fail: the first error, with the hedge endpoint told to the call's telemetry", async () => {
    const c = cluster();
    const plan = c.hedging.plan(undefined);
    if (plan === undefined) throw new Error('not hedged');
    const hedgedTo: unknown[] = [];
    const call: HedgedCall = {
      observed: { hedge: (e) => hedgedTo.push(e), hedgeWon: () => hedgedTo.push('won') },
    };
    const r = track(
      c.hedging.run(c.r1 as unknown as Endpoint, ADMITTED, STATEMENT, undefined, plan, call),
    );
    await vi.advanceTimersByTimeAsync(20);
    const firstError = new Error('r1 lost');
    c.r2.last.reject(new Error('r2 lost'));
    c.r1.last.reject(firstError);
    await flush();
    expect(r.outcome).toEqual({ state: 'rejected', error: firstError });
    expect(hedgedTo).toEqual([c.r2]);
    expect(c.hedging.counters).toMatchObject({ sent: 1, won: 0 });
  });

  it('no hedge once the pool is ending, and nothing counted', async () => {
    const lifetime = new AbortController();
    const c = cluster();
    const router = new Router(
      c.primary as unknown as Endpoint,
      [c.r1, c.r2] as unknown as Endpoint[],
      createBalancer<Endpoint>('round-robin'),
      true,
    );
    const hedging = new Hedging(
      { ...HEDGE_DEFAULTS, enabled: true, delay: 20, cancelAfterMs: 30 },
      router,
      lifetime.signal,
    );
    const plan = hedging.plan(undefined);
    if (plan === undefined) throw new Error('not hedged');
    const r = track(hedging.run(c.r1 as unknown as Endpoint, ADMITTED, STATEMENT, undefined, plan));
    lifetime.abort(new Error('end()'));
    await vi.advanceTimersByTimeAsync(20);
    expect(c.r2.attempts).toHaveLength(0);
    expect(hedging.stats()).toMatchObject({ reads: 1, sent: 0, noTarget: 0, budgetRefused: 0 });
    c.r1.last.resolve(answer('r1'));
    await flush();
    expect(r.outcome).toEqual({ state: 'resolved', value: answer('r1') });
  });

  it("the caller's abort ends both attempts on the endpoints, each once", async () => {
    const c = cluster();
    const caller = new AbortController();
    const r = read(c, c.r1, undefined, caller.signal);
    await vi.advanceTimersByTimeAsync(20);
    caller.abort(new Error('gone'));
    await flush();
    expect(c.r1.last.aborts).toBe(1);
    expect(c.r2.last.aborts).toBe(1);
    expect(r.outcome.state).toBe('rejected');
  });
});

describe('resolveHedgeOptions', () => {
  const resolve = (input: unknown) => {
    const problems: string[] = [];
    return { resolved: resolveHedgeOptions(input, problems), problems };
  };

  it('off unless asked: absent and false are the defaults, with hedging off', () => {
    expect(resolve(undefined)).toEqual({ resolved: HEDGE_DEFAULTS, problems: [] });
    expect(resolve(false)).toEqual({ resolved: HEDGE_DEFAULTS, problems: [] });
    expect(HEDGE_DEFAULTS.enabled).toBe(false);
  });

  it('true and {} turn it on with the defaults', () => {
    for (const input of [true, {}]) {
      expect(resolve(input)).toEqual({
        resolved: { ...HEDGE_DEFAULTS, enabled: true },
        problems: [],
      });
    }
  });

  it('takes every setting given, a deliberate 0 included', () => {
    expect(
      resolve({ delay: 0, budgetPercent: 0, budgetMinHedges: 0, cancelAfterMs: 0 }).resolved,
    ).toEqual({
      ...HEDGE_DEFAULTS,
      enabled: true,
      delay: 0,
      budgetPercent: 0,
      budgetMinHedges: 0,
      cancelAfterMs: 0,
    });
    expect(
      resolve({ delay: 'adaptive', quantile: 0.99, minDelayMs: 0, maxDelayMs: 50 }).resolved,
    ).toMatchObject({ delay: 'adaptive', quantile: 0.99, minDelayMs: 0, maxDelayMs: 50 });
  });

  it('lists every problem at once, unknown keys included, and hands back the defaults', () => {
    const { resolved, problems } = resolve({
      delay: 'fast',
      quantile: 1,
      budgetPercent: 101,
      budgetMinHedges: -1,
      cancelAfterMs: 60_001,
      delayMs: 20,
    });
    expect(resolved).toBe(HEDGE_DEFAULTS);
    expect(problems).toEqual([
      `hedge.delay: must be 'adaptive' or an integer from 0 to 2147483647, got 'fast'`,
      'hedge.quantile: must be a finite number from 0.5 to 0.999, got 1',
      'hedge.budgetPercent: must be a finite number from 0 to 100, got 101',
      'hedge.budgetMinHedges: must be an integer from 0 up, got -1',
      'hedge.cancelAfterMs: must be an integer from 0 to 60000, got 60001',
      'hedge.delayMs: unknown option (known: delay, quantile, minDelayMs, maxDelayMs, budgetPercent, budgetMinHedges, cancelAfterMs)',
    ]);
  });

  it('a floor above the ceiling is a problem', () => {
    expect(resolve({ minDelayMs: 600, maxDelayMs: 500 }).problems).toEqual([
      'hedge.minDelayMs (600) must not exceed hedge.maxDelayMs (500)',
    ]);
  });

  it('adaptive-only settings given with a fixed delay are a problem, not silently ignored', () => {
    expect(resolve({ delay: 20, quantile: 0.9, maxDelayMs: 100 }).problems).toEqual([
      "hedge: quantile, maxDelayMs apply only to delay: 'adaptive' (delay is 20)",
    ]);
  });

  it('anything but a boolean or an object is a problem', () => {
    expect(resolve('on').problems).toEqual(["hedge: must be true, false or an object, got 'on'"]);
    expect(resolve([]).problems).toEqual(['hedge: must be true, false or an object, got an array']);
  });
});

// ---- through the pool ------------------------------------------------------------------------

/** A fake replica whose statements the test answers by hand (or that answer at once). */
function slowFake(name: string): {
  name: string;
  pool: FakePool;
  pending: Array<{ resolve(r: QueryResultLike): void; reject(e: unknown): void }>;
  instant: boolean;
} {
  const pool = new FakePool(name, 4);
  const fake = {
    name,
    pool,
    pending: [] as Array<{ resolve(r: QueryResultLike): void; reject(e: unknown): void }>,
    instant: false,
  };
  pool.handler = () =>
    fake.instant
      ? answer(name)
      : new Promise<QueryResultLike>((resolve, reject) => {
          fake.pending.push({ resolve, reject });
        });
  return fake;
}

describe('hedged reads through the pool (FakePool)', () => {
  const make = usePools();

  function pools(hedge: ResilientPoolOptions['hedge'], extra: Partial<ResilientPoolOptions> = {}) {
    const primary = slowFake('primary');
    const r1 = slowFake('replica-1');
    const r2 = slowFake('replica-2');
    const db = make({
      primary: primary.pool,
      replicas: [r1.pool, r2.pool],
      health: { enabled: false },
      routing: { balancer: 'round-robin' },
      hedge,
      ...extra,
    });
    return { db, primary, r1, r2 };
  }

  /** No client checked out, no permit held anywhere. */
  function expectNothingHeld(db: ResilientPool, fakes: FakePool[]): void {
    for (const fake of fakes) expect(fake.totalCount).toBe(fake.idleCount);
    for (const e of db.stats().endpoints) {
      expect(e.inFlight, e.name).toBe(0);
      expect(e.queued, e.name).toBe(0);
    }
  }

  it('off by default: no hedges in stats, and a slow read is never sent twice', async () => {
    const { db, primary, r1, r2 } = pools(undefined);
    expect(db.stats().hedges).toBeUndefined();
    const r = track(db.read('SELECT 1'));
    await vi.advanceTimersByTimeAsync(2_000);
    const sent = [primary, r1, r2].map((f) => f.pool.statements.length);
    expect(sent.reduce((a, b) => a + b, 0)).toBe(1);
    for (const f of [primary, r1, r2]) f.pending.shift()?.resolve(answer(f.name));
    await flush();
    expect(r.outcome.state).toBe('resolved');
  });

  it('hedge: true: a read slow on its replica goes to the other one too; the hedge wins, the loser is cancelled and its client released', async () => {
    const { db, primary, r1, r2 } = pools({ delay: 50, cancelAfterMs: 100 });
    const r = track(db.read('SELECT 1'));
    await flush();
    const [slow, other] = r1.pool.statements.length === 1 ? [r1, r2] : [r2, r1];
    expect(slow.pool.statements).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(49);
    expect(other.pool.statements).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(other.pool.statements).toHaveLength(1);
    expect(primary.pool.statements).toHaveLength(0);
    other.pending.shift()?.resolve(answer('hedge'));
    await flush();
    expect(r.outcome).toEqual({ state: 'resolved', value: answer('hedge') });
    await vi.advanceTimersByTimeAsync(100);
    expect(db.stats().hedges).toEqual({
      reads: 1,
      sent: 1,
      won: 1,
      cancelled: 1,
      budgetRefused: 0,
      noTarget: 0,
    });
    // The loser's connection was destroyed (its statement cancelled), never reused.
    expectNothingHeld(db, [primary.pool, r1.pool, r2.pool]);
    expect(slow.pool.totalCount).toBe(0);
  });

  it('a first side stuck connecting: the hedge wins, the loser stops waiting for its connection, nothing is held', async () => {
    const { db, primary, r1, r2 } = pools({ delay: 50, cancelAfterMs: 100 });
    // Whichever replica the read goes to first accepts no connection (a server that never
    // answers the startup); the other answers at once.
    r1.pool.connectHangs = true;
    r2.instant = true;
    const uncaught: unknown[] = [];
    const record = (err: unknown) => uncaught.push(err);
    process.on('unhandledRejection', record);
    try {
      const reads = [track(db.read('SELECT 1')), track(db.read('SELECT 2'))];
      await vi.advanceTimersByTimeAsync(50);
      for (const r of reads) expect(r.outcome.state).toBe('resolved');
      // The loser's grace ends: its wait for a connection is ended, and its permit given back.
      await vi.advanceTimersByTimeAsync(100);
      expect(db.stats().hedges).toMatchObject({ sent: 1, won: 1, cancelled: 1 });
      for (const e of db.stats().endpoints) {
        expect(e.inFlight, e.name).toBe(0);
        expect(e.queued, e.name).toBe(0);
      }
      expect(primary.pool.statements).toEqual([]);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
    }
  });

  it('writes, query(), transactions, connect() clients and reads passing idempotent: false are never hedged', async () => {
    const { db, primary, r1, r2 } = pools({ delay: 10 });
    const calls = [
      db.write('UPDATE t SET a = 1'),
      db.query('SELECT 1'),
      db.read('SELECT 2', [], { idempotent: false }),
      db.transaction((tx) => tx.query('SELECT 3'), { role: 'read' }),
      db.connect({ role: 'read' }).then((client) => {
        const q = client.query('SELECT 4');
        return (q as Promise<unknown>).finally(() => client.release());
      }),
    ].map((p) => track(p));
    await vi.advanceTimersByTimeAsync(500);
    expect(db.stats().hedges).toMatchObject({ reads: 0, sent: 0 });
    const statements = [primary, r1, r2].flatMap((f) => f.pool.statements);
    // Each statement once (BEGIN aside): nothing was sent a second time.
    for (const text of ['UPDATE t SET a = 1', 'SELECT 1', 'SELECT 2', 'SELECT 4']) {
      expect(
        statements.filter((t) => t === text),
        text,
      ).toHaveLength(1);
    }
    for (let round = 0; round < 5; round++) {
      for (const f of [primary, r1, r2]) {
        f.instant = true;
        for (const p of f.pending.splice(0)) p.resolve(answer(f.name));
      }
      await flush();
    }
    expect(calls.map((c) => c.outcome.state)).toEqual(Array(5).fill('resolved'));
    // The transaction's statement ran after its BEGIN was answered: once too.
    const all = [primary, r1, r2].flatMap((f) => f.pool.statements);
    expect(all.filter((t) => t === 'SELECT 3')).toHaveLength(1);
    expect(db.stats().hedges).toMatchObject({ reads: 0, sent: 0 });
  });

  it('a read answered before the delay arms one timer and leaves none behind', async () => {
    const { db, r1, r2 } = pools({ delay: 50 });
    r1.instant = true;
    r2.instant = true;
    // Warm: each replica has an idle client, so the read takes the idle-client fast path.
    await db.read('SELECT 1');
    await db.read('SELECT 1');
    const before = vi.getTimerCount();
    const reading = db.read('SELECT 1', [], { signal: new AbortController().signal });
    expect(vi.getTimerCount()).toBe(before + 1);
    await reading;
    expect(vi.getTimerCount()).toBe(before);
    expect(db.stats().hedges).toMatchObject({ reads: 3, sent: 0 });
  });

  it('both sides failing: the retry goes where an unhedged read would, the replicas first, not the primary', async () => {
    const { db, primary, r1, r2 } = pools({ delay: 20 });
    const r = track(db.read('SELECT 1'));
    await flush();
    const [first, hedged] = r1.pool.statements.length === 1 ? [r1, r2] : [r2, r1];
    await vi.advanceTimersByTimeAsync(20);
    expect(hedged.pool.statements).toHaveLength(1);
    primary.instant = true;
    r1.instant = true;
    r2.instant = true;
    // Connections lost on both replicas (hot standbys: the read may be re-sent), as when every
    // node's backends are terminated at once.
    first.pending.shift()?.reject(socketError('ECONNRESET'));
    hedged.pending.shift()?.reject(socketError('ECONNRESET'));
    await vi.advanceTimersByTimeAsync(10);
    // The race was one attempt, on the first endpoint: the retry goes to the other replica, on a
    // new connection, as an unhedged read's would; the primary takes no read.
    expect(r.outcome).toEqual({ state: 'resolved', value: answer(hedged.name) });
    expect(hedged.pool.statements).toHaveLength(2);
    expect(first.pool.statements).toHaveLength(1);
    expect(primary.pool.statements).toEqual([]);
  });

  it('a read a replica refused as a write (25006) goes to the primary unhedged', async () => {
    const { db, primary, r1, r2 } = pools({ delay: 20 });
    const r = track(db.read('SELECT write_something()', [], { idempotent: true }));
    await flush();
    const refusing = r1.pending.length === 1 ? r1 : r2;
    refusing.pending
      .shift()
      ?.reject(pgError('25006', 'cannot execute UPDATE in a read-only transaction'));
    await vi.advanceTimersByTimeAsync(5);
    expect(primary.pool.statements).toEqual(['SELECT write_something()']);
    // Now a write: no hedge goes out, however long the primary takes.
    await vi.advanceTimersByTimeAsync(500);
    expect(r1.pool.statements.length + r2.pool.statements.length).toBe(1);
    expect(db.stats().hedges).toMatchObject({ reads: 1, sent: 0 });
    primary.pending.shift()?.resolve(answer('primary'));
    await flush();
    expect(r.outcome).toEqual({ state: 'resolved', value: answer('primary') });
  });

  it("the call's timeout bounds both sides: TimeoutError, both cancelled, nothing held", async () => {
    const { db, primary, r1, r2 } = pools({ delay: 20 });
    const r = track(db.read('SELECT 1', [], { timeout: 60 }));
    await vi.advanceTimersByTimeAsync(59);
    expect(r.outcome.state).toBe('pending');
    expect(r1.pool.statements.length + r2.pool.statements.length).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.outcome.state).toBe('rejected');
    expect((r.outcome as { error: { code?: string } }).error.code).toBe('E_TIMEOUT');
    await vi.advanceTimersByTimeAsync(10);
    expectNothingHeld(db, [primary.pool, r1.pool, r2.pool]);
  });

  it("end() does not wait out a loser's grace: the loser is cancelled at once", async () => {
    const { db, primary, r1, r2 } = pools({ delay: 20, cancelAfterMs: 60_000 });
    const r = track(db.read('SELECT 1'));
    await vi.advanceTimersByTimeAsync(20);
    const hedged = r1.pool.statements.length === 1 && r2.pool.statements.length === 1;
    expect(hedged).toBe(true);
    const winner = r2.pending.length > 0 ? r2 : r1;
    winner.pending.shift()?.resolve(answer('winner'));
    await flush();
    expect(r.outcome.state).toBe('resolved');
    const ended = track(db.end({ timeout: 30_000 }));
    await vi.advanceTimersByTimeAsync(10);
    expect(ended.outcome.state).toBe('resolved');
    expect(db.stats().hedges?.cancelled).toBe(1);
    expect(primary.pool.ended).toBe(true);
  });

  it('options: validated with the others, unknown keys rejected; defaults from DEFAULTS', () => {
    expect(() => pools({ delayMs: 5 } as never)).toThrow(/hedge\.delayMs: unknown option/);
    expect(() => pools('yes' as never)).toThrow(ConfigError);
    expect(HEDGE_DEFAULTS).toBe(DEFAULTS.hedge);
    const { db } = pools(true);
    expect(db.stats().hedges).toEqual({
      reads: 0,
      sent: 0,
      won: 0,
      cancelled: 0,
      budgetRefused: 0,
      noTarget: 0,
    });
  });
});
