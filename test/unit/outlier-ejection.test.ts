/**
 * Outlier ejection, sweep by sweep: a replica is ejected when a probe and everything sent to it
 * since went unanswered for `slowMs` (never for being busy, never for waiting in our queue), at
 * most `maxEjectionPercent` at once, the longest silent first; re-admitted by a probe answered in
 * time. Then the router: ejected replicas get no reads, and panic routing when all are out.
 *
 * Time here is the sweep: `sweep()` advances every replica's generation as the pool's
 * housekeeping does, then runs the detector. With slowMs 400 and a 100 ms sweep, a probe is
 * silent after 5 sweeps and a statement asks for a probe after 2.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Endpoint } from '../../src/endpoint/endpoint.js';
import type { ResilientPoolEvents } from '../../src/index.js';
import {
  generationsFor,
  resolveRecoveryOptions,
  sweepIntervalMs,
} from '../../src/options/outlier.js';
import { createBalancer } from '../../src/routing/balancers/create-balancer.js';
import { OutlierDetector } from '../../src/routing/outlier-ejection.js';
import { Router, type RoutingChange } from '../../src/routing/router.js';
import { FakePool } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

/** A replica as the detector and the router see it. */
class FakeReplica {
  generation = 0;
  readonly active = new Set<{ sentAt: number }>();
  readonly counters = { successes: 0, sqlErrors: 0 };
  readonly role = 'replica' as const;
  readonly weight = 1;
  share = 1;
  usable = true;
  isDown = false;
  breakerState: 'closed' | 'open' | 'half-open' = 'closed';
  readonly health = { state: 'healthy' as string, reason: null as string | null };
  constructor(readonly name: string) {}
  load(): number {
    return this.active.size;
  }
  isUsable(): boolean {
    return this.usable && !this.isDown && this.breakerState === 'closed';
  }
  /** A statement written to the wire now; returns it, to answer later. */
  send(): { sentAt: number } {
    const lease = { sentAt: this.generation };
    this.active.add(lease);
    return lease;
  }
  answer(lease?: { sentAt: number }): void {
    if (lease !== undefined) this.active.delete(lease);
    this.counters.successes++;
  }
}

const SETTINGS = { slowMs: 400, maxEjectionPercent: 50, sweepMs: 100 };

function setup(count = 2, settings = SETTINGS) {
  const replicas = Array.from({ length: count }, (_, i) => new FakeReplica(`r${i + 1}`));
  const asked: string[] = [];
  const detector = new OutlierDetector(replicas, settings, {
    requestProbe: (r) => asked.push(r.name),
  });
  const sweep = (times = 1, mayEject: (r: FakeReplica) => boolean = () => true) => {
    for (let i = 0; i < times; i++) {
      for (const r of replicas) r.generation++;
      detector.tick(mayEject);
    }
  };
  const ejected = () => replicas.filter((r) => detector.isEjected(r)).map((r) => r.name);
  return { replicas, detector, sweep, asked, ejected };
}

describe('outlier detector', () => {
  it('ejects a replica whose probe has had no answer for slowMs, and not a sweep before', () => {
    const { replicas, detector, sweep, ejected } = setup();
    const [r1] = replicas;
    detector.probeStarted(r1!);
    sweep(4);
    expect(ejected()).toEqual([]);
    sweep(1);
    expect(ejected()).toEqual(['r1']);
    expect(detector.reasonFor(r1!)).toMatch(/silent/);
    expect(detector.ejectionsOf(r1!)).toBe(1);
    expect(detector.ejectedCount).toBe(1);
  });

  it('counts a probe sent just before the last answers as owed from those answers on', () => {
    const { replicas, detector, sweep, ejected } = setup();
    const [r1] = replicas;
    r1!.send();
    const inFlight = r1!.send();
    sweep(1);
    // The probe goes out, then the last answers before the freeze come in, in the same period.
    detector.probeStarted(r1!);
    r1!.answer(inFlight);
    sweep(1);
    // Silent from here: slowMs later (five sweeps) it is ejected, not when the probe times out.
    sweep(4);
    expect(ejected()).toEqual([]);
    sweep(1);
    expect(ejected()).toEqual(['r1']);
  });

  it('never ejects a replica that answers calls while its probe is slow (only the probe is slow)', () => {
    const { replicas, detector, sweep, ejected } = setup();
    const [r1] = replicas;
    detector.probeStarted(r1!);
    for (let i = 0; i < 20; i++) {
      r1!.answer();
      sweep();
    }
    expect(ejected()).toEqual([]);
  });

  it('asks for a probe when a statement sent since the last answer waits a quarter of slowMs, once', () => {
    const { replicas, sweep, asked } = setup();
    const [r1] = replicas;
    r1!.send();
    sweep(1);
    expect(asked).toEqual([]);
    sweep(1);
    expect(asked).toEqual(['r1']);
    sweep(10);
    expect(asked).toEqual(['r1']);
  });

  it('does not eject a replica running one long statement: the probe it asks for is answered', () => {
    const { replicas, detector, sweep, asked, ejected } = setup();
    const [r1] = replicas;
    const long = r1!.send();
    sweep(2);
    expect(asked).toEqual(['r1']);
    // The probe starts a sweep late and takes four sweeps to answer: by then the statement has
    // waited seven, past slowMs, but the probe has not, so the replica is not silent.
    sweep(1);
    detector.probeStarted(r1!);
    sweep(4);
    expect(ejected()).toEqual([]);
    detector.probeSettled(r1!, true);
    // The long statement was sent before that answer: it no longer says anything.
    sweep(50);
    expect(ejected()).toEqual([]);
    expect(asked).toEqual(['r1']);
    r1!.answer(long);
    sweep(1);
    expect(ejected()).toEqual([]);
  });

  it('counts only time on the wire: a statement not yet sent (sentAt -1) never asks for a probe', () => {
    const { replicas, sweep, asked } = setup();
    replicas[0]!.active.add({ sentAt: -1 });
    sweep(20);
    expect(asked).toEqual([]);
  });

  it('does not count a statement stamped in the same sweep as the answer that preceded it', () => {
    const { replicas, sweep, asked } = setup();
    const [r1] = replicas;
    sweep(1);
    // Answered, then sent, between the same two sweeps: which came first is unknown.
    r1!.answer();
    r1!.send();
    sweep(10);
    expect(asked).toEqual([]);
  });

  it('ejects a silent replica end to end: statements unanswered, the probe they ask for too', () => {
    const { replicas, detector, sweep, asked, ejected } = setup();
    const [r1, r2] = replicas;
    r1!.send();
    r2!.send();
    r2!.answer();
    sweep(2);
    expect(asked).toEqual(['r1']);
    detector.probeStarted(r1!);
    sweep(4);
    expect(ejected()).toEqual([]);
    sweep(1);
    expect(ejected()).toEqual(['r1']);
  });

  it('ejects at most maxEjectionPercent, the longest silent first, and the first one always', () => {
    const { replicas, detector, sweep, ejected } = setup(2);
    const [r1, r2] = replicas;
    detector.probeStarted(r2!);
    sweep(1);
    detector.probeStarted(r1!);
    sweep(10);
    // Both silent; 50% of 2 is one: r2, silent for longer.
    expect(ejected()).toEqual(['r2']);
    const four = setup(4);
    for (const r of four.replicas) four.detector.probeStarted(r);
    four.sweep(10);
    expect(four.ejected()).toHaveLength(2);
    const one = setup(1, { ...SETTINGS, maxEjectionPercent: 1 });
    one.detector.probeStarted(one.replicas[0]!);
    one.sweep(10);
    expect(one.ejected()).toEqual(['r1']);
  });

  it('ranks by the silence of statements too, not only the probe', () => {
    const { replicas, detector, sweep, ejected } = setup(2);
    const [r1, r2] = replicas;
    r1!.send(); // r1 went silent first, with a statement
    sweep(1);
    r2!.send();
    detector.probeStarted(r2!);
    detector.probeStarted(r1!);
    sweep(5);
    expect(ejected()).toEqual(['r1']);
  });

  it('does not spend the cap on a replica that is out of routing anyway', () => {
    const { replicas, detector, sweep, ejected } = setup(2);
    const [r1, r2] = replicas;
    detector.probeStarted(r1!);
    detector.probeStarted(r2!);
    sweep(10, (r) => r !== r1);
    expect(ejected()).toEqual(['r2']);
  });

  it('re-admits on a probe answered within slowMs, not on a slow one, not on a failed one', () => {
    const { replicas, detector, sweep, ejected } = setup();
    const [r1] = replicas;
    detector.probeStarted(r1!);
    sweep(6);
    expect(ejected()).toEqual(['r1']);
    // The probe that proved it silent answers late: still out.
    detector.probeSettled(r1!, true);
    expect(ejected()).toEqual(['r1']);
    detector.probeStarted(r1!);
    sweep(1);
    detector.probeSettled(r1!, false);
    expect(ejected()).toEqual(['r1']);
    detector.probeStarted(r1!);
    sweep(4);
    detector.probeSettled(r1!, true);
    expect(ejected()).toEqual([]);
    expect(detector.ejectedCount).toBe(0);
    expect(detector.reasonFor(r1!)).toBeNull();
  });

  it('asks for a probe as soon as an ejected replica answers anything again, once', () => {
    const { replicas, detector, sweep, asked, ejected } = setup();
    const [r1] = replicas;
    detector.probeStarted(r1!);
    sweep(6);
    detector.probeSettled(r1!, false);
    expect(ejected()).toEqual(['r1']);
    expect(asked).toEqual([]);
    r1!.answer();
    sweep(1);
    r1!.answer();
    sweep(1);
    expect(asked).toEqual(['r1']);
  });

  it('never ejects the same replica twice over, and counts each ejection once', () => {
    const { replicas, detector, sweep } = setup();
    const [r1] = replicas;
    for (let round = 0; round < 3; round++) {
      detector.probeStarted(r1!);
      sweep(10);
      detector.probeSettled(r1!, false);
      detector.probeStarted(r1!);
      detector.probeSettled(r1!, true);
      // A probe sent in the same sweep as an answer is not counted as sent after it.
      sweep(1);
    }
    expect(detector.ejectionsOf(r1!)).toBe(3);
    expect(detector.ejectedCount).toBe(0);
  });

  it('ignores probe news about endpoints it does not watch, and a settle with no start', () => {
    const { replicas, detector, sweep, ejected } = setup();
    const stranger = new FakeReplica('primary');
    detector.probeStarted(stranger);
    detector.probeSettled(stranger, false);
    detector.probeSettled(replicas[0]!, true);
    sweep(10);
    expect(ejected()).toEqual([]);
    expect(detector.ejectionsOf(stranger)).toBe(0);
  });
});

describe('router with outlier ejection', () => {
  function routed(count = 2) {
    const primary = new FakeReplica('primary') as unknown as Endpoint & FakeReplica;
    (primary as { role: string }).role = 'primary';
    const fakes = Array.from({ length: count }, (_, i) => new FakeReplica(`r${i + 1}`));
    const replicas = fakes as unknown as Endpoint[];
    const detector = new OutlierDetector(replicas, SETTINGS, { requestProbe: () => {} });
    const changes: RoutingChange[] = [];
    const router = new Router(primary, replicas, createBalancer('round-robin'), true, {
      outliers: detector,
      onChange: (c) => changes.push(c),
    });
    const silence = (i: number) => {
      detector.probeStarted(replicas[i]!);
      for (let s = 0; s < 6; s++) {
        for (const r of fakes) r.generation++;
        router.sweep(0);
      }
    };
    const reads = (n: number) => Array.from({ length: n }, () => router.forRead(null)?.name);
    return { router, fakes, replicas, detector, silence, reads, changes, primary };
  }

  it('sends no reads to an ejected replica while another serves, and reports it', () => {
    const { router, replicas, silence, reads, changes } = routed();
    silence(0);
    expect(reads(4)).toEqual(['r2', 'r2', 'r2', 'r2']);
    expect(router.routingState(replicas[0]!)).toBe('ejected');
    expect(router.routingState(replicas[1]!)).toBe('routed');
    expect(changes).toEqual([
      {
        endpoint: 'r1',
        state: 'ejected',
        previous: 'routed',
        reason: expect.stringMatching(/silent/),
      },
    ]);
  });

  it('panics when every replica is out and some only as an outlier: reads go to it, not the primary', () => {
    const { router, fakes, replicas, silence, reads, changes } = routed();
    fakes[1]!.isDown = true;
    silence(0);
    expect(reads(3)).toEqual(['r1', 'r1', 'r1']);
    expect(router.routingState(replicas[0]!)).toBe('panic');
    expect(router.routingState(replicas[1]!)).toBe('ejected');
    expect(changes.map((c) => [c.endpoint, c.state])).toEqual([
      ['r2', 'ejected'],
      ['r1', 'panic'],
    ]);
    // A replica hard out too (its probe timed out): the primary takes the reads.
    fakes[0]!.isDown = true;
    expect(reads(2)).toEqual(['primary', 'primary']);
  });

  it('is not in panic while a routable replica is only excluded by this call', () => {
    const { replicas, silence, router } = routed();
    silence(0);
    const tried = new Set([replicas[1]!]);
    expect(router.forRead(tried)?.name).toBe('primary');
    expect(router.hasReadAlternative(tried)).toBe(true);
  });

  it('pickReplica skips ejected replicas, but not in panic', () => {
    const { router, fakes, silence } = routed();
    silence(0);
    expect(router.pickReplica(() => true)?.name).toBe('r2');
    expect(router.pickReplica((e) => e.name === 'r1')).toBeUndefined();
    fakes[1]!.isDown = true;
    expect(router.pickReplica((e) => e.name === 'r1')?.name).toBe('r1');
  });

  it('routes to a re-admitted replica again and reports slow start while its share ramps', () => {
    const { router, fakes, replicas, detector, silence, reads } = routed();
    silence(0);
    detector.probeStarted(replicas[0]!);
    detector.probeSettled(replicas[0]!, true);
    expect(reads(2).sort()).toEqual(['r1', 'r2']);
    fakes[0]!.share = 0.5;
    expect(router.routingState(replicas[0]!)).toBe('slow-start');
  });
});

describe('through the pool (needs the integration patch)', () => {
  const make = usePools();
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** A replica answering probes as a standby, that answers nothing at all while frozen. */
  function standby(name: string) {
    const pool = new FakePool(name);
    const state = { frozen: false };
    pool.handler = (text) => {
      if (state.frozen) return new Promise(() => {});
      if (!text.includes('pg_is_in_recovery')) return { rows: [{ ok: 1 }], rowCount: 1 };
      return {
        rows: [{ in_recovery: true, lsn: '0/3', receive_lsn: '0/3', replay_age_ms: 0 }],
        rowCount: 1,
      };
    };
    return { pool, state };
  }

  function setupPool() {
    const primary = new FakePool('p');
    primary.handler = (text) =>
      text.includes('pg_is_in_recovery')
        ? {
            rows: [{ in_recovery: false, lsn: '0/3', receive_lsn: null, replay_age_ms: null }],
            rowCount: 1,
          }
        : { rows: [{ ok: 1 }], rowCount: 1 };
    const r1 = standby('r1');
    const r2 = standby('r2');
    const db = make({
      primary,
      replicas: [r1.pool, r2.pool],
      routing: { balancer: 'round-robin' },
      health: { intervalMs: 1_000, timeoutMs: 1_000 },
      outlier: { slowMs: 400 },
      slowStart: { windowMs: 2_000 },
    });
    const changes: Array<[string, string]> = [];
    db.on('routing', (c: ResilientPoolEvents['routing']) => changes.push([c.endpoint, c.state]));
    const routingOf = (name: string) => db.stats().endpoints.find((e) => e.name === name)!;
    return { db, r1, r2, changes, routingOf };
  }

  it('ejects a frozen replica within about 1.5 slowMs, before its circuit opens', async () => {
    const { db, r1, r2, changes, routingOf } = setupPool();
    await vi.advanceTimersByTimeAsync(1_050);
    r1.state.frozen = true;
    // Reads keep coming, one every 50 ms: the ones sent to the frozen replica hang.
    for (let ms = 0; ms < 800; ms += 50) {
      void db.read('SELECT 1').catch(() => {});
      await vi.advanceTimersByTimeAsync(50);
    }
    expect(routingOf('replica-1')).toMatchObject({ routing: 'ejected', breaker: 'closed' });
    expect(routingOf('replica-1').routingReason).toMatch(/silent/);
    expect(changes).toContainEqual(['replica-1', 'ejected']);
    r2.pool.statements.length = 0;
    r1.pool.statements.length = 0;
    await Promise.all(Array.from({ length: 6 }, () => db.read('SELECT 1')));
    expect(r1.pool.statements).toEqual([]);
    expect(r2.pool.statements.filter((s) => s === 'SELECT 1')).toHaveLength(6);
  });

  it('re-admits it through slow start once a probe is answered again', async () => {
    const { db, r1, changes, routingOf } = setupPool();
    await vi.advanceTimersByTimeAsync(1_050);
    r1.state.frozen = true;
    void db.read('SELECT 1').catch(() => {});
    void db.read('SELECT 1').catch(() => {});
    await vi.advanceTimersByTimeAsync(3_000);
    expect(routingOf('replica-1').routing).toBe('ejected');
    r1.state.frozen = false;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(changes).toContainEqual(['replica-1', 'slow-start']);
    expect(routingOf('replica-1').outlierEjections).toBe(1);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(routingOf('replica-1')).toMatchObject({ routing: 'routed', share: 1 });
  });

  it('does not eject a replica that is slow but answering, however long calls queue', async () => {
    const { db, r1, r2, changes } = setupPool();
    await vi.advanceTimersByTimeAsync(1_050);
    // Every statement takes 300 ms on the server (just under slowMs); probes stay quick.
    for (const { pool } of [r1, r2]) {
      const answer = pool.handler;
      pool.handler = (text, values, p) =>
        text.includes('pg_is_in_recovery')
          ? answer(text, values, p)
          : new Promise((resolve) => setTimeout(() => resolve({ rows: [], rowCount: 0 }), 300));
    }
    // A burst twenty times the pools' size: most calls wait seconds in our queue.
    const burst = Array.from({ length: 400 }, () => db.read('SELECT 1').catch(() => {}));
    await vi.advanceTimersByTimeAsync(8_000);
    await Promise.all(burst);
    expect(changes).toEqual([]);
  });
});

describe('outlier, slowStart and connectPacing options', () => {
  const resolve = (input: Record<string, unknown>, healthEnabled = true) => {
    const problems: string[] = [];
    const resolved = resolveRecoveryOptions(input, healthEnabled, problems);
    return { resolved, problems };
  };

  it('defaults: ejection on at 500 ms and 50%, a 5 s ramp from 10%, pacing on', () => {
    expect(resolve({})).toEqual({
      resolved: {
        outlier: { enabled: true, slowMs: 500, maxEjectionPercent: 50 },
        slowStart: { windowMs: 5_000, minWeightPercent: 10 },
        connectPacing: { enabled: true },
      },
      problems: [],
    });
  });

  it('takes what is given, and a deliberate 0 ramp stays 0 (off)', () => {
    const { resolved, problems } = resolve({
      outlier: { slowMs: 1_000, maxEjectionPercent: 100 },
      slowStart: { windowMs: 0 },
      connectPacing: { enabled: false },
    });
    expect(problems).toEqual([]);
    expect(resolved.outlier).toEqual({ enabled: true, slowMs: 1_000, maxEjectionPercent: 100 });
    expect(resolved.slowStart.windowMs).toBe(0);
    expect(resolved.connectPacing.enabled).toBe(false);
  });

  it('lists every problem at once, unknown keys included', () => {
    const { problems } = resolve({
      outlier: { slowMs: 5, maxEjectionPercent: 0, slowMS: 100 },
      slowStart: { windowMs: -1, minWeightPercent: 150 },
      connectPacing: 'yes',
    });
    expect(problems).toEqual([
      expect.stringMatching(/^outlier\.slowMs: must be an integer from 20/),
      expect.stringMatching(/^outlier\.maxEjectionPercent: must be an integer from 1 to 100/),
      expect.stringMatching(/^outlier\.slowMS: unknown option \(known: enabled, slowMs/),
      expect.stringMatching(/^slowStart\.windowMs: must be an integer from 0/),
      expect.stringMatching(/^slowStart\.minWeightPercent: must be an integer from 1 to 100/),
      'connectPacing: must be an object',
    ]);
  });

  it('is off without the health monitor, and asking for it then is a problem', () => {
    expect(resolve({}, false)).toMatchObject({
      resolved: { outlier: { enabled: false } },
      problems: [],
    });
    expect(resolve({ outlier: { enabled: true } }, false).problems).toEqual([
      expect.stringMatching(/^outlier\.enabled: needs the health monitor/),
    ]);
  });

  it('sweeps at the finest period any threshold needs, and not at all when none does', () => {
    const on = resolve({}).resolved;
    const breaker = { enabled: true, slowCallMs: 30_000 };
    expect(sweepIntervalMs(breaker, on)).toBe(125);
    const off = resolve({ outlier: { enabled: false }, slowStart: { windowMs: 0 } }).resolved;
    // As before these options existed: half the slow-call threshold, three generations.
    expect(sweepIntervalMs(breaker, off)).toBe(15_000);
    expect(generationsFor(30_000, 15_000)).toBe(3);
    expect(sweepIntervalMs({ enabled: false, slowCallMs: 30_000 }, off)).toBeUndefined();
    expect(sweepIntervalMs({ enabled: true, slowCallMs: 0 }, off)).toBeUndefined();
    expect(generationsFor(30_000, 125)).toBe(241);
    expect(generationsFor(500, 125)).toBe(5);
  });
});
