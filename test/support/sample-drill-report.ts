/**
 * A realistic, deterministic, synthetic drill report: 60 s against one primary and two
 * replicas, with four of the drill's scenarios played (replica SIGKILL, replica hang, network
 * black hole on the primary, primary fail-over with promotion). Used by the HTML report's tests
 * and to produce the docs screenshot; it is not measured data.
 */
import type {
  DrillReport,
  DrillSample,
  EndpointBand,
  EndpointState,
  FaultSummary,
  FaultWindow,
  InvariantResult,
  RoutingBand,
} from '../../src/drill/report-model.js';
import { createRng } from '../../src/drill/rng.js';
import { SCENARIO_INFO, type ScenarioName } from '../../src/drill/scenario-names.js';
import { targetChecks } from '../../src/drill/summary.js';

export interface SampleReportOptions {
  /** Make the 'no-acknowledged-write-lost' invariant fail (a red verdict). Default false. */
  failedInvariant?: boolean;
}

const SEED = 1337;
const SECONDS = 60;
const ENDPOINTS = ['primary', 'replica-1', 'replica-2'] as const;
const BASE_OPS = 1850;
/** The wrapped pools' `max`. */
const POOL_MAX = 16;
/** When the failover's promotion ended: writes go to replica-1 from then on. */
const PROMOTED_AT = 46_500;

/** What a fault does to one second of load, relative to the baseline. */
interface Effect {
  /** Throughput as a fraction of the baseline. */
  ops?: number;
  p50?: number;
  p99?: number;
  errors?: number;
  retries?: number;
}

interface Scenario extends FaultWindow {
  name: ScenarioName;
  timeToDetectMs: number | null;
  timeToRecoverMs: number | null;
  /** Effects on the seconds after injection: [0] is the window ending 1 s after `start`. */
  effects: Effect[];
  /** Breaker states other than closed, as inclusive ranges of seconds after `start`. */
  breaker: { endpoint: string; from: number; to: number; state: EndpointBand }[];
}

/** Four of the drill's scenarios, in the order `all` plays them (see scenario-names.ts). */
const SCENARIOS: Scenario[] = [
  {
    // replica-1 dies; its reads fail over to replica-2 and the primary after one connection
    // failure each; restarted after 5 s, back in rotation once its breaker closes.
    name: 'replica-kill',
    description: 'SIGKILL replica-1, restart it after 5 s',
    target: 'replica-1',
    start: 6_000,
    end: 11_000,
    timeToDetectMs: 620,
    timeToRecoverMs: 4_620,
    effects: [
      { ops: 0.81, p50: 2.9, p99: 184, retries: 46 },
      { ops: 0.92, p50: 2.7, p99: 23, retries: 5 },
      { ops: 0.95, p50: 2.6, p99: 15 },
      { ops: 0.95, p50: 2.6, p99: 14 },
      { ops: 0.94, p50: 2.6, p99: 19, retries: 3 },
      { ops: 0.95, p50: 2.5, p99: 16 },
      { ops: 0.96, p50: 2.5, p99: 14 },
      { ops: 0.96, p50: 2.4, p99: 13 },
      { ops: 0.97, p50: 2.3, p99: 12 },
      { ops: 0.99, p99: 11 },
    ],
    breaker: [
      { endpoint: 'replica-1', from: 1, to: 8, state: 'open' },
      { endpoint: 'replica-1', from: 9, to: 9, state: 'half-open' },
    ],
  },
  {
    // replica-2 stops answering: connections hang until the acquire timeout (2 s); its breaker
    // opens after ~1.8 s and reads go elsewhere.
    name: 'replica-hang',
    description: 'SIGSTOP replica-2 for 5 s: connections accept but never answer',
    target: 'replica-2',
    start: 17_000,
    end: 22_000,
    timeToDetectMs: 1_840,
    timeToRecoverMs: 3_910,
    effects: [
      { ops: 0.55, p50: 3.4, p99: 2010, errors: 4, retries: 58 },
      { ops: 0.71, p50: 3.1, p99: 2040, errors: 9, retries: 71 },
      { ops: 0.93, p50: 2.6, p99: 19, retries: 2 },
      { ops: 0.95, p50: 2.5, p99: 15 },
      { ops: 0.95, p50: 2.5, p99: 15 },
      { ops: 0.96, p50: 2.4, p99: 14 },
      { ops: 0.97, p50: 2.3, p99: 12 },
      { ops: 0.98, p99: 13, retries: 1 },
    ],
    breaker: [
      { endpoint: 'replica-2', from: 2, to: 7, state: 'open' },
      { endpoint: 'replica-2', from: 8, to: 8, state: 'half-open' },
    ],
  },
  {
    // Packets to the primary vanish (no RST): writes wait out the acquire timeout, then the
    // breaker opens and they fail fast until a half-open probe succeeds after the heal.
    name: 'network-blackhole',
    description: 'Drop every packet to the primary for 5 s (no RST, no FIN)',
    target: 'primary',
    start: 29_000,
    end: 34_000,
    timeToDetectMs: 2_150,
    timeToRecoverMs: 2_840,
    effects: [
      { ops: 0.83, p50: 2.4, p99: 1980, retries: 24 },
      { ops: 0.79, p50: 2.5, p99: 2060, errors: 41, retries: 37 },
      { ops: 0.8, p50: 2.2, p99: 12, errors: 352 },
      { ops: 0.8, p50: 2.2, p99: 11, errors: 361 },
      { ops: 0.8, p50: 2.2, p99: 11, errors: 349 },
      { ops: 0.8, p50: 2.2, p99: 11, errors: 355 },
      { ops: 0.81, p50: 2.2, p99: 12, errors: 338 },
      { ops: 0.96, p50: 2.3, p99: 17, errors: 6, retries: 3 },
    ],
    breaker: [
      { endpoint: 'primary', from: 3, to: 7, state: 'open' },
      { endpoint: 'primary', from: 8, to: 8, state: 'half-open' },
    ],
  },
  {
    // The primary dies and replica-1 is promoted. Writes surface errors meanwhile (never
    // retried when the outcome is unknown); reads keep flowing.
    name: 'primary-failover',
    description: 'SIGKILL the primary, promote replica-1 (pg_ctl promote)',
    target: 'primary',
    start: 44_000,
    end: 50_000,
    promotedAt: PROMOTED_AT,
    timeToDetectMs: 410,
    timeToRecoverMs: 1_380,
    effects: [
      { ops: 0.71, p50: 2.9, p99: 420, errors: 37, retries: 41 },
      { ops: 0.58, p50: 3.3, p99: 1250, errors: 112, retries: 88 },
      { ops: 0.62, p50: 3.2, p99: 980, errors: 96, retries: 64 },
      { ops: 0.66, p50: 3.0, p99: 640, errors: 58, retries: 37 },
      { ops: 0.78, p50: 2.8, p99: 210, errors: 18, retries: 22 },
      { ops: 0.93, p50: 2.5, p99: 38, errors: 2, retries: 4 },
      { ops: 0.98, p99: 16 },
    ],
    breaker: [
      { endpoint: 'primary', from: 1, to: 5, state: 'open' },
      { endpoint: 'primary', from: 6, to: 6, state: 'half-open' },
    ],
  },
];

const round1 = (n: number): number => Math.round(n * 10) / 10;

function effectAt(second: number): Effect {
  for (const f of SCENARIOS) {
    const e = f.effects[second - f.start / 1000 - 1];
    if (e) return e;
  }
  return {};
}

function breakerState(endpoint: string, second: number): EndpointBand {
  for (const f of SCENARIOS) {
    const rel = second - f.start / 1000;
    const hit = f.breaker.find((b) => b.endpoint === endpoint && rel >= b.from && rel <= b.to);
    if (hit) return hit.state;
  }
  return 'closed';
}

/** Routing and connections of an endpoint in second `s`, following its breaker. */
function laneState(
  name: string,
  s: number,
  breaker: EndpointBand,
  rnd: () => number,
): EndpointState {
  const primary = name === 'primary';
  let routing: RoutingBand = 'serving';
  if (breaker === 'open') routing = primary ? 'avoided' : 'ejected';
  // replica-2 hangs: the health monitor declares it down before its circuit opens
  if (name === 'replica-2' && s === 18) routing = 'down';
  const hurt = breaker !== 'closed';
  const used = hurt ? (primary ? POOL_MAX : 0) : Math.round(3 + rnd() * 5);
  const idle = hurt ? 0 : Math.round(2 + rnd() * 4);
  return {
    routing,
    pending: hurt && primary ? Math.round(12 + rnd() * 30) : rnd() < 0.1 ? 1 : 0,
    idle,
    used,
    max: POOL_MAX,
    calls: routing === 'serving' ? Math.round((BASE_OPS / 3) * (0.9 + rnd() * 0.2)) : 0,
    lagMs: primary ? null : Math.round(rnd() * 40),
  };
}

function faultAt(t: number): string | null {
  return SCENARIOS.find((f) => t >= f.start && t < f.end)?.name ?? null;
}

function buildSamples(): DrillSample[] {
  const rnd = createRng(SEED);
  const samples: DrillSample[] = [];
  for (let s = 1; s <= SECONDS; s++) {
    const e = effectAt(s);
    // a short warm-up ramp, then a steady load with a little noise
    const ramp = s === 1 ? 0.74 : s === 2 ? 0.93 : 1;
    const ops = Math.round(BASE_OPS * ramp * (e.ops ?? 1) * (0.97 + rnd() * 0.06));
    const p50 = round1((e.p50 ?? 2.1) * (0.9 + rnd() * 0.2));
    // faults' spikes are scripted; only the baseline gets the wider noise
    const p99 = round1(
      e.p99 === undefined ? 9.5 * (0.85 + rnd() * 0.3) : e.p99 * (0.98 + rnd() * 0.04),
    );
    const endpoints: Record<string, EndpointBand> = {};
    const endpointState: Record<string, EndpointState> = {};
    for (const name of ENDPOINTS) {
      endpoints[name] = breakerState(name, s);
      endpointState[name] = laneState(name, s, endpoints[name], rnd);
    }
    samples.push({
      t: s * 1000,
      ok: ops,
      errors: e.errors ?? 0,
      retries: e.retries ?? (rnd() < 0.15 ? 1 : 0),
      opsPerSec: ops,
      p50,
      p99,
      max: round1(p99 * (1.3 + rnd() * 0.8)),
      worst: round1(p99 * (1.5 + rnd() * 0.8)),
      endpoints,
      endpointState,
      primaryNode: s * 1000 > PROMOTED_AT ? 'replica-1' : 'primary',
      fault: faultAt(s * 1000),
    });
  }
  return samples;
}

function summarise(samples: DrillSample[]): FaultSummary[] {
  return SCENARIOS.map((f) => {
    const recoveredAt = f.end + (f.timeToRecoverMs ?? 10_000);
    const during = samples.filter((s) => s.t > f.start && s.t <= recoveredAt);
    const before = samples.filter((s) => s.t <= f.start && s.t > f.start - 5_000);
    const p99s = (list: DrillSample[]): number[] =>
      list.map((s) => s.p99).filter((v): v is number => v !== null);
    const baseline = p99s(before).sort((a, b) => a - b);
    const duringP99 = p99s(samples.filter((s) => s.t > f.start && s.t <= f.end + 1000));
    const row: FaultSummary = {
      name: f.name,
      target: f.target,
      timeToDetectMs: f.timeToDetectMs,
      errorsSurfaced: during.reduce((n, s) => n + s.errors, 0),
      retries: during.reduce((n, s) => n + s.retries, 0),
      p99BaselineMs: baseline.length > 0 ? baseline[Math.floor(baseline.length / 2)]! : null,
      p99DuringMs: duringP99.length > 0 ? Math.max(...duringP99) : null,
      readP99BeforeMs: baseline.length > 0 ? baseline[0]! : null,
      readP99DuringMs: duringP99.length > 0 ? Math.max(...duringP99) * 0.9 : null,
      readErrors: 0,
      errorsByCode: errorCodes(during.reduce((n, s) => n + s.errors, 0)),
      worstCall: {
        kind: f.target === 'primary' ? 'write' : 'read',
        startedAt: f.start + 150,
        latencyMs: f.target === 'primary' ? 2_004 : 1_012,
        ok: f.target !== 'primary',
        error: f.target === 'primary' ? 'E_OUTCOME_UNKNOWN' : null,
      },
      writesInFlightAtFault: f.target === 'primary' ? 3 : 0,
      connectsAfterRecovery: { [f.target]: 4 },
      poolMax: POOL_MAX,
      timeToRecoverMs: f.timeToRecoverMs,
    };
    if (f.promotedAt !== undefined) {
      row.writesFlowingAfterMs = 420;
      row.primaryNodeAfter = 'replica-1';
    }
    row.targets = targetChecks(row, POOL_MAX);
    return row;
  });
}

/** `n` errors, as the drill's codes would split them. */
function errorCodes(n: number): Record<string, number> {
  if (n === 0) return {};
  const unknown = Math.min(n, 3);
  return n > unknown
    ? { E_OUTCOME_UNKNOWN: unknown, E_CIRCUIT_OPEN: n - unknown }
    : { E_OUTCOME_UNKNOWN: n };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** A synthetic but realistic {@link DrillReport}; the same on every call. */
export function sampleDrillReport(options: SampleReportOptions = {}): DrillReport {
  const failed = options.failedInvariant ?? false;
  const samples = buildSamples();
  const summary = summarise(samples);
  const ok = samples.reduce((n, s) => n + s.ok, 0);
  const errors = samples.reduce((n, s) => n + s.errors, 0);
  const retries = samples.reduce((n, s) => n + s.retries, 0);
  const writesAcknowledged = Math.round(ok * 0.2);
  const worstRecover = summary.reduce((w, s) =>
    (s.timeToRecoverMs ?? 0) > (w.timeToRecoverMs ?? 0) ? s : w,
  );
  const worstP99 = summary.reduce((w, s) => ((s.p99DuringMs ?? 0) > (w.p99DuringMs ?? 0) ? s : w));
  const invariants: InvariantResult[] = [
    failed
      ? {
          name: 'no-acknowledged-write-lost',
          ok: false,
          detail: `2 of ${fmt(writesAcknowledged)} acknowledged writes missing on the new primary after promotion (ids 18342, 18347)`,
        }
      : {
          name: 'no-acknowledged-write-lost',
          ok: true,
          detail: `all ${fmt(writesAcknowledged)} acknowledged writes present on the new primary after promotion`,
        },
    {
      name: 'no-unsafe-retry',
      ok: true,
      detail: 'no write with an unknown outcome was re-sent (0 of 41 E_OUTCOME_UNKNOWN retried)',
    },
    {
      name: 'errors-typed',
      ok: true,
      detail: `all ${fmt(errors)} surfaced errors carried a stable code (E_CIRCUIT_OPEN, E_ACQUIRE_TIMEOUT, E_OUTCOME_UNKNOWN, 57P01)`,
    },
    {
      name: 'recovered-after-each-fault',
      ok: true,
      detail: `throughput and breakers back to normal after every fault (slowest: ${worstRecover.name}, ${fmt(worstRecover.timeToRecoverMs ?? 0)} ms)`,
    },
    {
      name: 'latency-bounded',
      ok: true,
      detail: `p99 never exceeded acquire timeout + 10 % (2,200 ms); worst ${fmt(worstP99.p99DuringMs ?? 0)} ms during ${worstP99.name}`,
    },
  ];
  return {
    startedAt: '2025-01-15T10:42:07.000Z',
    durationMs: SECONDS * 1000,
    seed: SEED,
    config: {
      replicas: 2,
      concurrency: 32,
      scenarios: SCENARIOS.map((f) => f.name),
      external: false,
      readers: 26,
      writers: 6,
      redis: false,
      skipped: ['redis-loss: needs a Redis for the read cache (--redis URL, or REDIS_URL)'],
    },
    endpoints: [...ENDPOINTS],
    samples,
    faults: SCENARIOS.map(({ name, description, target, start, end, promotedAt }) => ({
      name,
      description,
      target,
      endpoint: target,
      expected: SCENARIO_INFO[name].expected,
      start,
      end,
      ...(promotedAt === undefined ? {} : { promotedAt }),
    })),
    summary,
    invariants,
    totals: { ok, errors, retries, writesAcknowledged },
  };
}
