/**
 * A fail-over drill: a real primary and replicas (or external servers), a steady mixed workload
 * through a ResilientPool, a schedule of real faults, and the invariants checked at the end.
 * Used by the `resilient-pool drill` command and usable from a test suite.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { holdAndWatch } from './detect.js';
import { checkErrorsTyped, checkLedger, checkNoLeak } from './invariants.js';
import { percentile, Recorder, statusLine } from './recorder.js';
import type { DrillReport, FaultWindow } from './report-model.js';
import { createRng } from './rng.js';
import {
  PROCESS_SCENARIOS,
  REDIS_SCENARIOS,
  REPLICA_SCENARIOS,
  SCENARIOS,
  type ScenarioName,
} from './scenario-names.js';
import { planFault } from './scenarios.js';
import { baselineOps, summarizeFault } from './summary.js';
import { type DrillTargets, openTargets } from './targets.js';
import { KV_TABLE, LEDGER_TABLE, prepareSchema, Workload } from './workload.js';

export interface DrillOptions {
  /**
   * Total length of the drill, in ms (baseline, then an equal slot per scenario).
   * @default 60000
   */
  durationMs?: number;
  /**
   * Scenarios to play, in this order.
   * @default every scenario the setup allows
   */
  scenarios?: readonly ScenarioName[];
  /**
   * Streaming replicas of the local cluster.
   * @default 2
   */
  replicas?: number;
  /**
   * Concurrent callers.
   * @default 8
   */
  concurrency?: number;
  /**
   * Calls per second across all callers.
   * @default 300
   */
  rate?: number;
  /**
   * Seed of the schedule (which replica is hit, when): the same seed plays the same drill.
   * @default a random seed, reported
   */
  seed?: number;
  /**
   * Redis (on loopback) for the pool's read cache, put behind a ChaosProxy: half the reads go
   * through the cache, and the 'redis-loss' scenario black-holes it.
   * @default no cache
   */
  redisUrl?: string;
  /** External servers instead of a local cluster (network faults only; loopback addresses). */
  external?: { primary: string; replicas: readonly string[] };
  /** Receives one status line per second. */
  onStatus?: (line: string) => void;
  /** Receives a line when a fault is injected or healed, and other notes. */
  onEvent?: (line: string) => void;
}

/** Scenarios the setup can play, and why the others cannot. */
export function availableScenarios(
  wanted: readonly ScenarioName[],
  setup: { external: boolean; replicas: number; redis: boolean },
): { play: ScenarioName[]; skipped: string[] } {
  const play: ScenarioName[] = [];
  const skipped: string[] = [];
  for (const name of wanted) {
    if (REDIS_SCENARIOS.has(name) && !setup.redis) {
      skipped.push(`${name}: needs a Redis for the read cache (--redis URL, or REDIS_URL)`);
    } else if (setup.external && PROCESS_SCENARIOS.has(name)) {
      skipped.push(`${name}: needs control of the server processes, unavailable with --primary`);
    } else if (setup.replicas === 0 && REPLICA_SCENARIOS.has(name)) {
      skipped.push(`${name}: needs a replica`);
    } else if (name === 'primary-failover' && setup.replicas < 2) {
      skipped.push(`${name}: needs 2 replicas (quorum commit keeps acknowledged writes)`);
    } else {
      play.push(name);
    }
  }
  return { play, skipped };
}

/** External replicas: wait (bounded) until they have replayed the drill's tables. */
async function waitForSchemaOnReplicas(targets: DrillTargets): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (const replica of targets.replicas) {
    const pool = targets.pools.get(replica.name);
    for (;;) {
      const { rows } = await pool!.query<{ ready: boolean }>(
        'SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ready',
        [KV_TABLE, LEDGER_TABLE],
      );
      if (rows[0]?.ready) break;
      if (Date.now() > deadline) {
        throw new Error(`${replica.name} did not replay the drill's tables within 20 s`);
      }
      await delay(200);
    }
  }
}

export async function runDrill(options: DrillOptions = {}): Promise<DrillReport> {
  const durationMs = options.durationMs ?? 60_000;
  const concurrency = options.concurrency ?? 8;
  const rate = options.rate ?? 300;
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const external = options.external;
  const replicas = external ? external.replicas.length : (options.replicas ?? 2);
  const say = options.onEvent ?? (() => {});
  const { play, skipped } = availableScenarios(options.scenarios ?? SCENARIOS, {
    external: external !== undefined,
    replicas,
    redis: options.redisUrl !== undefined,
  });
  for (const line of skipped) say(`skipped ${line}`);
  // The failover is final (the old primary stays down): whatever else runs goes before it.
  if (play.includes('primary-failover')) {
    play.splice(play.indexOf('primary-failover'), 1);
    play.push('primary-failover');
  }
  // Two streams, so the schedule (which node, when) depends on the seed alone and not on how
  // many calls the workload happened to make.
  const scheduleRng = createRng(seed);
  const workloadRng = createRng(seed ^ 0x9e3779b9);
  const startedAt = new Date().toISOString();

  const targets = await openTargets({
    replicas,
    external,
    concurrency,
    log: undefined,
    redisUrl: options.redisUrl,
  });
  try {
    const { db } = targets;
    await prepareSchema(db);
    if (targets.cluster) await targets.cluster.waitForReplication(20_000);
    else await waitForSchemaOnReplicas(targets);
    const recorder = new Recorder(db);
    const workload = new Workload(db, {
      concurrency,
      rate,
      readShare: 0.8,
      cachedShare: db.cache ? 0.5 : 0,
      rng: workloadRng,
      onOutcome: (o) => recorder.record(o),
    });
    const sampler = setInterval(() => {
      // Sampled whether or not anyone prints the status line: the summary is built from samples.
      const sample = recorder.sample();
      options.onStatus?.(statusLine(sample));
    }, 1_000);
    workload.start();

    const faults: FaultWindow[] = [];
    const avoided: Array<number | null> = [];
    const baselineMs = Math.max(3_000, durationMs * 0.1);
    const slotMs = play.length > 0 ? (durationMs - baselineMs) / play.length : 0;
    try {
      await delay(baselineMs);
      for (const [i, name] of play.entries()) {
        const slotEnd = baselineMs + (i + 1) * slotMs;
        const holdMs = Math.max(1_000, slotMs * 0.35);
        await delay(scheduleRng() * slotMs * 0.1);
        const fault = planFault(name, targets, scheduleRng, holdMs);
        if (fault === undefined) {
          say(`skipped ${name}: no node left that it can hit`);
          const rest = slotEnd - recorder.now();
          if (rest > 0) await delay(rest);
          continue;
        }
        recorder.fault = `${fault.name} (${fault.target})`;
        const start = recorder.now();
        say(`fault: ${fault.description}`);
        await fault.inject();
        const avoidedAt = await holdAndWatch(db, fault.target, holdMs, () => recorder.now());
        await fault.heal();
        const end = recorder.now();
        recorder.fault = null;
        say(`healed: ${fault.name} (${fault.target}) after ${Math.round(end - start)} ms`);
        faults.push({ name, description: fault.description, target: fault.target, start, end });
        avoided.push(avoidedAt);
        const rest = slotEnd - recorder.now();
        if (rest > 0) await delay(rest);
      }
      const rest = durationMs - recorder.now();
      if (rest > 0) await delay(rest);
    } finally {
      await workload.stop();
      clearInterval(sampler);
    }

    const firstFault = faults[0]?.start ?? recorder.now();
    const baseline = {
      ops: baselineOps(recorder.samples, firstFault),
      p99: percentile(recorder.latenciesBetween(0, firstFault), 99),
    };
    const summary = faults.map((f, i) =>
      summarizeFault(f, faults[i + 1], recorder, baseline, avoided[i] ?? null),
    );
    const invariants = [
      await checkLedger(targets.primaryConnection(), workload.ledger),
      await checkNoLeak(db, targets.pools),
      checkErrorsTyped(workload.ledger),
    ];
    const totals = recorder.samples.reduce(
      (t, s) => ({ ok: t.ok + s.ok, errors: t.errors + s.errors, retries: t.retries + s.retries }),
      { ok: 0, errors: 0, retries: 0 },
    );
    return {
      startedAt,
      durationMs: Math.round(recorder.now()),
      seed,
      config: {
        replicas,
        concurrency,
        scenarios: faults.map((f) => f.name),
        external: external !== undefined,
      },
      endpoints: [
        'primary',
        ...targets.replicas.map((r) => r.name),
        ...(db.cache ? ['redis'] : []),
      ],
      samples: recorder.samples,
      faults,
      summary,
      invariants,
      totals: { ...totals, writesAcknowledged: workload.ledger.acknowledged.size },
    };
  } finally {
    await targets.close();
  }
}
