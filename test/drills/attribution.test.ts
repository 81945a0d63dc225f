/**
 * How the drill attributes calls and builds its per-fault figures, on a synthetic recording: a
 * call counts in the window it started in, a fault's errors are the failed calls that overlapped
 * it, its worst call is the slowest one running during it, and issue 12's bars are checked from
 * those figures.
 */
import { describe, expect, it } from 'vitest';
import {
  type CallRecord,
  errorsByCode,
  figuresByWindow,
  firstAckAfter,
  inFlightDuring,
  overlapping,
  p99Started,
  startedIn,
  worstOverlapping,
} from '../../src/drill/calls.js';
import { checkUsableAfterFaults } from '../../src/drill/invariants.js';
import { routingBand, statusLine } from '../../src/drill/recorder.js';
import type { DrillSample, EndpointBand } from '../../src/drill/report-model.js';
import {
  type PlayedFault,
  type Recording,
  summarizeFault,
  targetChecks,
} from '../../src/drill/summary.js';

const call = (
  kind: CallRecord['kind'],
  start: number,
  end: number,
  error?: string,
  refused = false,
): CallRecord => ({
  kind,
  start,
  end,
  ok: error === undefined,
  ...(error === undefined ? {} : { error }),
  ...(refused ? { refused: true } : {}),
});

/** Reads of 2 ms every 100 ms over [from, to): ten a second. */
function steadyReads(from: number, to: number): CallRecord[] {
  const calls: CallRecord[] = [];
  for (let t = from; t < to; t += 100) calls.push(call('read', t, t + 2));
  return calls;
}

function sample(t: number, endpoints: Record<string, EndpointBand>, opsPerSec = 100): DrillSample {
  return {
    t,
    ok: opsPerSec,
    errors: 0,
    retries: 0,
    opsPerSec,
    p50: 2,
    p99: 2,
    max: 2,
    endpoints,
    fault: null,
  };
}

describe('call attribution', () => {
  it('puts a call in the window it started in, not the one it ended in', () => {
    // Started at 1.5 s, hung 2 s through a fault: it belongs to the second window.
    const hung = call('read', 1_500, 3_500);
    const figures = figuresByWindow([...steadyReads(0, 4_000), hung], [1_000, 2_000, 3_000, 4_000]);
    expect(figures[1]!.p99).toBe(2_000);
    expect(figures[1]!.max).toBe(2_000);
    expect(figures[3]!.max).toBe(2);
    expect(figures.map((f) => f.ok)).toEqual([10, 11, 10, 10]);
    expect(figures[1]!.opsPerSec).toBe(11);
  });

  it('counts failed calls as errors of their window, and the worst of any outcome', () => {
    const figures = figuresByWindow(
      [call('write', 100, 200), call('write', 300, 1_900, 'E_OUTCOME_UNKNOWN')],
      [1_000, 2_000],
    );
    expect(figures[0]).toMatchObject({ ok: 1, errors: 1, max: 100, worst: 1_600 });
    expect(figures[1]).toMatchObject({ ok: 0, errors: 0, p99: null, worst: null });
  });

  it('leaves out calls started after the last window', () => {
    const figures = figuresByWindow([call('read', 2_500, 2_501)], [1_000, 2_000]);
    expect(figures.map((f) => f.ok)).toEqual([0, 0]);
  });

  it('answers which calls started in, overlapped or were in flight at a moment', () => {
    const calls = [
      call('write', 0, 50),
      call('write', 90, 130),
      call('read', 95, 105),
      call('write', 100, 120, 'ECONNRESET'),
      call('read', 200, 210),
    ];
    expect(startedIn(calls, 90, 101)).toHaveLength(3);
    expect(startedIn(calls, 90, 101, 'read')).toHaveLength(1);
    expect(overlapping(calls, 100, 200)).toHaveLength(3); // 90-130, 95-105, 100-120
    expect(inFlightDuring(calls, 100, 100, 'write')).toBe(2);
    expect(inFlightDuring(calls, 50, 50, 'write')).toBe(0); // ended exactly then
    // While a server was being killed (131-140): the write that started then counts, the one
    // that ended before does not.
    expect(
      inFlightDuring([...calls, call('write', 135, 160, 'E_OUTCOME_UNKNOWN')], 131, 140, 'write'),
    ).toBe(1);
    expect(errorsByCode(calls)).toEqual({ ECONNRESET: 1 });
    expect(p99Started(calls, 0, 1_000, 'write')).toBe(50);
  });

  it('reports the slowest call running during a window, even one started before it', () => {
    const calls = [call('read', 0, 1_200, 'E_ENDPOINT_DOWN'), call('write', 1_100, 1_300)];
    expect(worstOverlapping(calls, 1_000, 2_000)).toEqual({
      kind: 'read',
      startedAt: 0,
      latencyMs: 1_200,
      ok: false,
      error: 'E_ENDPOINT_DOWN',
    });
    expect(worstOverlapping(calls, 5_000, 6_000)).toBeNull();
  });

  it('finds the first write acknowledged after a moment', () => {
    const calls = [
      call('write', 0, 900),
      call('write', 950, 1_400, 'E_CIRCUIT_OPEN'),
      call('read', 1_000, 1_100),
      call('write', 1_200, 1_350),
    ];
    expect(firstAckAfter(calls, 1_000)).toBe(350);
    expect(firstAckAfter(calls, 2_000)).toBeNull();
  });
});

describe('summarizeFault on a synthetic recording', () => {
  const all = { primary: 'closed', 'replica-1': 'closed' } as const;
  const fault: PlayedFault = {
    name: 'primary-failover',
    description: 'kill and promote',
    target: 'primary',
    endpoint: 'primary',
    start: 5_000,
    end: 7_000,
    promotedAt: 6_500,
    avoidedAt: null,
    recoveryFrom: 7_000,
    retired: [],
  };
  const calls = [
    ...steadyReads(0, 10_000),
    call('write', 1_000, 1_010),
    // On the wire at the kill: its outcome is unknown.
    call('write', 4_990, 5_200, 'E_OUTCOME_UNKNOWN'),
    // Started during the fault, failed after its window, before recovery: still the fault's.
    call('write', 6_000, 7_300, 'E_CIRCUIT_OPEN'),
    // The first write the new primary acknowledged.
    call('write', 6_600, 6_900),
    // A slow read that started before the fault and ended in it.
    call('read', 4_500, 5_500),
  ];
  const recording: Recording = {
    calls,
    samples: [
      sample(5_000, all),
      sample(6_000, { ...all, primary: 'open' }),
      sample(7_000, { ...all, primary: 'open' }, 40),
      sample(8_000, all, 20),
      sample(9_000, all),
      sample(10_000, all),
    ],
    breakerChanges: [{ t: 5_300, endpoint: 'primary', state: 'open' }],
    routingEvents: [{ t: 5_100, endpoint: 'primary', event: 'down' }],
    retryTimes: [5_010, 5_020, 9_500],
    connects: [
      { t: 7_100, endpoint: 'primary' },
      { t: 7_200, endpoint: 'primary' },
      { t: 8_500, endpoint: 'primary' },
      { t: 7_300, endpoint: 'replica-1' },
    ],
    endedAt: 10_000,
  };
  const row = summarizeFault(fault, undefined, recording, {
    baseline: { ops: 100, p99: 2 },
    poolMax: 4,
    maxLagMs: 1_000,
  });

  it('detects at the first sign, and recovers once circuits closed and throughput is back', () => {
    expect(row.timeToDetectMs).toBe(100); // the down event, before the breaker opened
    // 8 s has its circuits closed but 20 ops/s: 9 s is the first recovered sample.
    expect(row.timeToRecoverMs).toBe(2_000);
  });

  it('counts the errors that overlapped the fault, by code, and the retries until recovery', () => {
    expect(row.errorsSurfaced).toBe(2);
    expect(row.errorsByCode).toEqual({ E_OUTCOME_UNKNOWN: 1, E_CIRCUIT_OPEN: 1 });
    expect(row.readErrors).toBe(0);
    expect(row.retries).toBe(2);
    expect(row.writesInFlightAtFault).toBe(1);
  });

  it('measures latency by start, and the worst call running during the fault', () => {
    expect(row.readP99BeforeMs).toBe(1_000); // the slow read started before the fault
    expect(row.readP99DuringMs).toBe(2);
    expect(row.worstCall).toMatchObject({ kind: 'write', latencyMs: 1_300, ok: false });
  });

  it('measures the promotion and the connections after recovery', () => {
    expect(row.writesFlowingAfterMs).toBe(400);
    expect(row.connectsAfterRecovery).toEqual({ primary: 2, 'replica-1': 1 });
  });

  it("checks issue 12's bars from the figures", () => {
    const byName = Object.fromEntries((row.targets ?? []).map((t) => [t.name, t.ok]));
    expect(byName).toEqual({
      'errors surfaced <= writes in flight at the fault': false, // 2 > 1
      'writes flow to the new primary within 1 s of promotion': true,
      'connection attempts per endpoint in the first second after recovery <= pool max': true,
    });
  });

  it('does not wait for circuits of endpoints gone for good', () => {
    const stuck: Recording = {
      ...recording,
      samples: recording.samples.map((s) => ({
        ...s,
        endpoints: { ...s.endpoints, 'replica-1': 'open' },
      })),
    };
    const context = { baseline: { ops: 100, p99: 2 }, poolMax: 4, maxLagMs: 1_000 };
    expect(summarizeFault(fault, undefined, stuck, context).timeToRecoverMs).toBeNull();
    const retired = { ...fault, retired: ['replica-1'] };
    expect(summarizeFault(retired, undefined, stuck, context).timeToRecoverMs).toBe(2_000);
  });

  it('stops looking at the next fault', () => {
    const next: PlayedFault = { ...fault, name: 'replica-kill', start: 8_500, end: 9_500 };
    const cut = summarizeFault(fault, next, recording, {
      baseline: { ops: 100, p99: 2 },
      poolMax: 4,
      maxLagMs: 1_000,
    });
    expect(cut.timeToRecoverMs).toBeNull();
    expect(cut.retries).toBe(2);
  });

  it('gives the overload its admitted and refusal figures', () => {
    const overload: PlayedFault = {
      ...fault,
      name: 'overload',
      endpoint: 'replicas',
      promotedAt: undefined,
      overloadPlan: {
        permits: 8,
        unloadedP99Ms: 25,
        capacityPerSec: 320,
        offeredPerSec: 640,
        notSent: 0,
      },
    };
    delete overload.promotedAt;
    const burst = [
      call('overload', 5_100, 5_140),
      call('overload', 5_200, 5_700),
      call('overload', 5_300, 5_300.2, 'E_QUEUE_FULL', true),
      call('overload', 5_400, 6_400, 'E_ACQUIRE_TIMEOUT'),
    ];
    const r = summarizeFault(
      overload,
      undefined,
      { ...recording, calls: [...calls, ...burst] },
      {
        baseline: { ops: 100, p99: 2 },
        poolMax: 4,
        maxLagMs: 1_000,
      },
    );
    expect(r.overload).toMatchObject({
      admitted: 2,
      refused: 1,
      failed: 1,
      admittedP99Ms: 500,
      errorsByCode: { E_QUEUE_FULL: 1, E_ACQUIRE_TIMEOUT: 1 },
    });
    expect(r.overload?.refusalP99Ms).toBeCloseTo(0.2);
    // The burst's calls are not the workload's errors.
    expect(r.errorsSurfaced).toBe(2);
    // Not one endpoint's: its first refusal (the primary's down event is not its sign).
    expect(r.timeToDetectMs).toBe(300);
    const checks = Object.fromEntries((r.targets ?? []).map((t) => [t.name, t.ok]));
    expect(checks['admitted p99 <= 2x unloaded p99']).toBe(false);
    expect(checks['refusal p99 < 1 ms']).toBe(true);
    // 2 admitted in a 2 s window; the workload's failed writes, by code (here no limit was sampled).
    expect(r.overload).toMatchObject({
      admittedPerSec: 1,
      lowestLimit: {},
      writeErrorsByCode: { E_OUTCOME_UNKNOWN: 1, E_CIRCUIT_OPEN: 1 },
    });
  });

  it('holds a replica-lag fault to its bound and counts calls only in whole held-back windows', () => {
    const lagging = (t: number, routing: 'serving' | 'lagging', lagMs: number, calls: number) => ({
      ...sample(t, all),
      endpointState: {
        'replica-1': { routing, pending: 0, idle: 1, used: 0, max: 4, calls, lagMs },
      },
    });
    const lag: PlayedFault = {
      ...fault,
      name: 'replica-lag',
      endpoint: 'replica-1',
      target: 'replica-1',
    };
    delete lag.promotedAt;
    const r = summarizeFault(
      lag,
      undefined,
      {
        ...recording,
        samples: [
          lagging(6_000, 'serving', 800, 50),
          lagging(7_000, 'lagging', 1_800, 12),
          lagging(8_000, 'lagging', 2_800, 0),
          lagging(9_000, 'serving', 0, 60),
        ],
      },
      { baseline: { ops: 100, p99: 2 }, poolMax: 4, maxLagMs: 1_000 },
    );
    expect(r.lag).toEqual({
      boundMs: 1_000,
      maxLagMs: 2_800,
      heldBackAfterMs: 2_000,
      callsWhileHeldBack: 0,
    });
  });
});

describe('targetChecks', () => {
  const base = {
    target: 'primary',
    timeToDetectMs: 10,
    retries: 0,
    p99BaselineMs: 2,
    p99DuringMs: 2,
    timeToRecoverMs: 100,
  };

  it('wants no error at all from a planned switchover', () => {
    const checks = targetChecks(
      {
        ...base,
        name: 'planned-switchover',
        errorsSurfaced: 1,
        writesInFlightAtFault: 3,
        writesFlowingAfterMs: 1_500,
      },
      4,
    );
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['no error surfaced', false],
      ['writes flow to the new primary within 1 s of promotion', false],
      ['connection attempts per endpoint in the first second after recovery <= pool max', true],
    ]);
  });

  it('holds read faults to 3x the p99 before and no read error, and connects to the pool max', () => {
    const checks = targetChecks(
      {
        ...base,
        name: 'replica-hang',
        errorsSurfaced: 0,
        readP99BeforeMs: 10,
        readP99DuringMs: 31,
        readErrors: 0,
        connectsAfterRecovery: { 'replica-1': 5 },
      },
      4,
    );
    expect(checks.map((c) => c.ok)).toEqual([false, true, false]);
  });
});

describe('overload: the gate limits sampled during the fault', () => {
  it('keeps the lowest limit of each endpoint over the fault window and the second after', () => {
    const state = (limit: number) => ({
      routing: 'serving' as const,
      pending: 0,
      idle: 0,
      used: 4,
      max: 4,
      calls: 10,
      lagMs: null,
      limit,
    });
    const at = (t: number, r1: number, r2: number): DrillSample => ({
      ...sample(t, { 'replica-1': 'closed', 'replica-2': 'closed' }),
      endpointState: { 'replica-1': state(r1), 'replica-2': state(r2) },
    });
    const fault: PlayedFault = {
      name: 'overload',
      description: 'overload',
      target: 'read endpoints',
      endpoint: 'replicas',
      expected: '',
      start: 1_000,
      end: 3_000,
      avoidedAt: null,
      recoveryFrom: 3_000,
      retired: [],
      overloadPlan: {
        permits: 8,
        unloadedP99Ms: 25,
        capacityPerSec: 320,
        offeredPerSec: 640,
        notSent: 0,
      },
    };
    const row = summarizeFault(
      fault,
      undefined,
      {
        calls: [call('overload', 1_100, 1_130), call('write', 1_200, 1_201, 'E_QUEUE_FULL')],
        // Before the fault (1 s) and long after it (5 s) do not count.
        samples: [
          at(1_000, 1, 1),
          at(2_000, 3, 4),
          at(3_000, 2, 4),
          at(4_000, 4, 3),
          at(5_000, 1, 1),
        ],
        breakerChanges: [],
        routingEvents: [],
        retryTimes: [],
        connects: [],
        endedAt: 5_000,
      },
      { baseline: { ops: 100, p99: 2 }, poolMax: 4, maxLagMs: 1_000 },
    );
    expect(row.overload?.lowestLimit).toEqual({ 'replica-1': 2, 'replica-2': 3 });
    // A write refused for a full queue during a read burst: reads spilled onto the primary.
    expect(row.overload?.writeErrorsByCode).toEqual({ E_QUEUE_FULL: 1 });
  });
});

describe('routing events', () => {
  it("detects a fault when the pool's routing event ejects its endpoint", () => {
    const fault: PlayedFault = {
      name: 'replica-hang',
      description: 'SIGSTOP replica-1',
      target: 'replica-1',
      endpoint: 'replica-1',
      expected: '',
      start: 1_000,
      end: 4_000,
      avoidedAt: null,
      recoveryFrom: 4_000,
      retired: [],
    };
    const recording: Recording = {
      calls: steadyReads(0, 6_000),
      samples: [],
      breakerChanges: [{ t: 2_500, endpoint: 'replica-1', state: 'open' }],
      routingEvents: [],
      routingChanges: [
        // Another endpoint's, and one that is not an ejection: neither is the sign.
        { t: 1_100, endpoint: 'replica-2', state: 'ejected', previous: 'routed', reason: 'silent' },
        { t: 1_200, endpoint: 'replica-1', state: 'slow-start', previous: 'routed', reason: null },
        { t: 1_600, endpoint: 'replica-1', state: 'ejected', previous: 'routed', reason: 'silent' },
      ],
      retryTimes: [],
      connects: [],
      endedAt: 6_000,
    };
    const row = summarizeFault(fault, undefined, recording, {
      baseline: { ops: null, p99: 2 },
      poolMax: 4,
      maxLagMs: 1_000,
    });
    expect(row.timeToDetectMs).toBe(600);
  });
});

describe('routing state', () => {
  const replica = { role: 'replica' as const, breaker: 'closed' as const, down: false };

  it('says why an endpoint got no calls', () => {
    const none = { asked: true, othersServed: true };
    expect(routingBand({ ...replica, health: 'healthy' }, 10, none)).toBe('serving');
    expect(routingBand({ ...replica, health: 'healthy' }, 0, none)).toBe('avoided');
    expect(
      routingBand({ ...replica, health: 'healthy' }, 0, { asked: true, othersServed: false }),
    ).toBe('idle');
    expect(routingBand({ ...replica, health: 'lagging' }, 3, none)).toBe('lagging');
    expect(routingBand({ ...replica, health: 'ejected' }, 0, none)).toBe('ejected');
    expect(routingBand({ ...replica, health: 'ejected', down: true }, 0, none)).toBe('down');
    // Out of routing with a closed circuit and healthy probes: ejected as an outlier.
    expect(routingBand({ ...replica, health: 'healthy', routing: 'ejected' }, 0, none)).toBe(
      'ejected',
    );
    expect(routingBand({ ...replica, health: 'healthy', routing: 'panic' }, 5, none)).toBe(
      'serving',
    );
    expect(
      routingBand({ ...replica, breaker: 'open', health: 'healthy', routing: 'ejected' }, 0, none),
    ).toBe('avoided');
    const primary = { role: 'primary' as const, breaker: 'open' as const, down: false };
    expect(
      routingBand({ ...primary, health: 'healthy' }, 0, { asked: false, othersServed: false }),
    ).toBe('avoided');
  });

  it('shows routing and the node writes go to in the status line', () => {
    const line = statusLine({
      ...sample(12_000, { primary: 'closed', 'replica-1': 'open', 'replica-2': 'closed' }),
      primaryNode: 'replica-2',
      endpointState: {
        primary: {
          routing: 'serving',
          pending: 3,
          idle: 0,
          used: 4,
          max: 4,
          calls: 50,
          lagMs: null,
        },
        'replica-1': {
          routing: 'ejected',
          pending: 0,
          idle: 0,
          used: 0,
          max: 4,
          calls: 0,
          lagMs: null,
        },
        'replica-2': {
          routing: 'lagging',
          pending: 1,
          idle: 1,
          used: 2,
          max: 4,
          calls: 9,
          lagMs: 2_400,
        },
      },
    });
    expect(line).toContain('primary(replica-2):ok');
    expect(line).toContain('replica-1:OPEN,ejected');
    expect(line).toContain('replica-2:lagging 2.4s');
    expect(line).toContain('pending   4');
  });
});

describe('checkUsableAfterFaults', () => {
  const window = (name: string, start: number, end: number) => ({
    name,
    description: name,
    target: 'primary',
    start,
    end,
  });
  const row = (name: string, timeToRecoverMs: number | null) => ({
    name,
    target: 'primary',
    timeToDetectMs: 10,
    errorsSurfaced: 0,
    retries: 0,
    p99BaselineMs: 2,
    p99DuringMs: 2,
    timeToRecoverMs,
  });
  const faults = [window('primary-restart', 1_000, 2_000), window('replica-kill', 5_000, 6_000)];
  const summary = [row('primary-restart', 500), row('replica-kill', 1_000)];
  const traffic = (from: number, to: number) => [
    ...steadyReads(from, to),
    ...steadyReads(from + 50, to).map((c) => ({ ...c, kind: 'write' as const })),
  ];

  it('holds when calls succeed from each recovery on', () => {
    const calls = [...traffic(0, 9_000), call('write', 1_500, 1_600, 'E_CIRCUIT_OPEN')];
    const result = checkUsableAfterFaults(faults, summary, calls, 9_000);
    expect(result.ok, result.detail).toBe(true);
  });

  it('fails on a call that failed after the recovery, such as one on a dead idle client', () => {
    const calls = [...traffic(0, 9_000), call('write', 3_000, 3_001, 'ECONNRESET')];
    const result = checkUsableAfterFaults(faults, summary, calls, 9_000);
    expect(result.ok).toBe(false);
    expect(result.detail).toBe('primary-restart: 1 calls failed after it (ECONNRESET)');
  });

  it('fails when no write succeeded after a fault, and looks at the last second without a recovery', () => {
    const readsOnly = steadyReads(0, 9_000);
    expect(checkUsableAfterFaults(faults, summary, readsOnly, 9_000).detail).toBe(
      'primary-restart: no write succeeded after it; replica-kill: no write succeeded after it',
    );
    const unrecovered = [row('primary-restart', null), row('replica-kill', 1_000)];
    // errors until just before the next fault's last second are not held against it
    const calls = [...traffic(0, 9_000), call('write', 3_500, 3_600, 'E_CIRCUIT_OPEN')];
    expect(checkUsableAfterFaults(faults, unrecovered, calls, 9_000).ok).toBe(true);
    const late = [...calls, call('write', 4_500, 4_600, 'E_CIRCUIT_OPEN')];
    expect(checkUsableAfterFaults(faults, unrecovered, late, 9_000).ok).toBe(false);
  });

  it("leaves a call still running at the next fault's injection to that fault", () => {
    const calls = [...traffic(0, 9_000), call('write', 4_990, 5_100, 'E_OUTCOME_UNKNOWN')];
    expect(checkUsableAfterFaults(faults, summary, calls, 9_000).ok).toBe(true);
  });

  it('leaves the overload burst out', () => {
    const calls = [...traffic(0, 9_000), call('overload', 3_000, 3_000.1, 'E_QUEUE_FULL', true)];
    expect(checkUsableAfterFaults(faults, summary, calls, 9_000).ok).toBe(true);
  });
});
