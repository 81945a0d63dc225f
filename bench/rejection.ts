/**
 * Case 3: what a refused call costs the caller, from `db.query()` to the caught error, for an
 * open circuit and for a full queue; with reference costs of a bare await, an awaited rejection
 * and an Error with a captured stack, measured by the same loop.
 */

import { FakePool } from '../test/support/fake-pool.js';
import type { BenchPlan } from './config.js';
import { median, min } from './stats.js';
import { ResilientPool } from './subject.js';
import { within } from './watchdog.js';

const SQL = 'SELECT 1';

export interface RejectionResult {
  kind: string;
  rounds: number;
  calls: number;
  nsPerCall: number[];
  medianNs: number;
  minNs: number;
  /** What the refused calls rejected with, and whether every call was refused that way. */
  check: string;
  /** How to read the figures. */
  readAs: string;
}

/** What the timed calls settled with: `expected` is the code every call should carry. */
interface Seen {
  expected: unknown;
  calls: number;
  mismatches: number;
  other: unknown;
}

/** Sequential calls of `one`, each caught; ns per call. One comparison per call checks the code. */
function timeRefusals(one: () => Promise<unknown>, plan: BenchPlan, seen: Seen): Promise<number> {
  const calls = plan.rejectCalls;
  return within(refusalLoop(one, calls, seen), plan.cpuRoundLimitMs, `a round of ${calls} calls`);
}

async function refusalLoop(
  one: () => Promise<unknown>,
  calls: number,
  seen: Seen,
): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    let code: unknown = 'resolved';
    try {
      await one();
    } catch (err) {
      code = (err as { code?: unknown }).code;
    }
    if (code !== seen.expected) {
      seen.mismatches++;
      seen.other ??= code;
    }
  }
  seen.calls += calls;
  return Number(process.hrtime.bigint() - start) / calls;
}

async function measure(
  kind: string,
  expected: unknown,
  one: () => Promise<unknown>,
  plan: BenchPlan,
  verify: () => string = () => '',
  readAs = 'ns per refused call; lower is better',
): Promise<RejectionResult> {
  const seen: Seen = { expected, calls: 0, mismatches: 0, other: undefined };
  await timeRefusals(one, plan, seen);
  const nsPerCall: number[] = [];
  for (let i = 0; i < plan.rejectRounds; i++) {
    nsPerCall.push(await timeRefusals(one, plan, seen));
    // Refusals settle in microtasks only; let timers run between rounds.
    await new Promise((resolve) => setImmediate(resolve));
  }
  // Counted over every call, the untimed warm-up round included.
  const outcome = describeOutcome(expected);
  const codes =
    seen.mismatches === 0
      ? `all ${seen.calls} calls ${outcome}`
      : `${seen.mismatches}/${seen.calls} calls NOT ${outcome} (e.g. ${describeOutcome(seen.other)})`;
  const extra = verify();
  return {
    kind,
    rounds: plan.rejectRounds,
    calls: plan.rejectCalls,
    nsPerCall,
    medianNs: median(nsPerCall),
    minNs: min(nsPerCall),
    check: extra === '' ? codes : `${codes}; ${extra}`,
    readAs,
  };
}

/** What a call settled with, as the check cell says it: `code` is the sentinel or the error's. */
function describeOutcome(code: unknown): string {
  if (code === 'resolved') return 'resolved';
  if (code === undefined) return 'rejected with an Error without a code';
  return `rejected with ${String(code)}`;
}

/** Refusals counted by the pool itself, before and after: every timed call must be one. */
function refusedDelta(db: ResilientPool, reason: 'circuit-open' | 'queue-full'): () => number {
  const before = db.stats().endpoints[0]!.rejected[reason];
  return () => db.stats().endpoints[0]!.rejected[reason] - before;
}

export async function circuitOpenCost(plan: BenchPlan): Promise<RejectionResult> {
  const fake = new FakePool('down', 10);
  fake.connectError = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
    code: 'ECONNREFUSED',
  });
  const db = new ResilientPool({
    primary: fake,
    logger: false,
    // resetTimeout: long enough that the circuit cannot go half-open during the measurement.
    breaker: { volumeThreshold: 1, errorThresholdPercentage: 1, resetTimeout: 600_000 },
    retry: { retries: 0 },
    // No health probes: against a server that refuses connections they declare the endpoint
    // down within about two seconds, and the calls are then refused with E_ENDPOINT_DOWN, a
    // different refusal from the one measured here (the check column would count them).
    health: { enabled: false },
  });
  try {
    let opening = 0;
    while (db.stats().endpoints[0]!.breaker !== 'open') {
      if (++opening > 1_000) throw new Error('the circuit did not open after 1000 failed calls');
      await db.query(SQL).catch(() => {});
    }
    const refused = refusedDelta(db, 'circuit-open');
    const connectsBefore = fake.connects;
    return await measure(
      'circuit open',
      'E_CIRCUIT_OPEN',
      () => db.query(SQL),
      plan,
      () => {
        const reached = fake.connects - connectsBefore;
        return `pool counted ${refused()} refusals; ${reached} reached the pool; opened after ${opening} calls`;
      },
    );
  } finally {
    await db.end();
  }
}

export async function queueFullCost(plan: BenchPlan): Promise<RejectionResult> {
  const fake = new FakePool('busy', 1);
  fake.connectHangs = true;
  const db = new ResilientPool({
    primary: fake,
    logger: false,
    // acquireTimeout: long enough that the holder keeps the permit for the whole measurement.
    queue: { maxWaiting: 0, acquireTimeout: 60_000 },
    // No health probes: a probe's connect would hang like the holder's and, timing out, declare
    // the endpoint down, which refuses with E_ENDPOINT_DOWN instead of E_QUEUE_FULL.
    health: { enabled: false },
  });
  const holder = db.query(SQL);
  holder.catch(() => {});
  try {
    const held = db.stats().endpoints[0]!.inFlight;
    if (held !== 1)
      throw new Error(`expected the holder to take the only permit, inFlight=${held}`);
    const refused = refusedDelta(db, 'queue-full');
    return await measure(
      'queue full',
      'E_QUEUE_FULL',
      () => db.query(SQL),
      plan,
      () => {
        const held = db.stats().endpoints[0]!.inFlight === 1 ? 'permit still held' : 'PERMIT LOST';
        return `pool counted ${refused()} refusals; ${held}`;
      },
    );
  } finally {
    // The holder never settles (its connect hangs); do not wait for it. Its acquire timer is
    // the pool's own and outlives end(): run.ts exits explicitly.
    await db.end({ timeout: 0 });
  }
}

/** Reference loops, timed the same way. */
export async function references(plan: BenchPlan): Promise<RejectionResult[]> {
  const prebuilt = Object.assign(new Error('prebuilt'), { code: 'E_REF' });
  const cases: Array<[string, unknown, () => Promise<unknown>]> = [
    ['ref: await resolved promise', 'resolved', () => Promise.resolve(1)],
    ['ref: await pre-built rejection', 'E_REF', () => Promise.reject(prebuilt)],
    [
      'ref: async fn throwing new Error',
      undefined,
      async () => {
        throw new Error('with stack');
      },
    ],
  ];
  const out: RejectionResult[] = [];
  for (const [kind, expected, one] of cases) {
    out.push(
      await measure(kind, expected, one, plan, undefined, 'reference cost for scale (not ours)'),
    );
  }
  return out;
}
