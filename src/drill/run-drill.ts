/**
 * A fail-over drill: a real primary and replicas (or external servers), independent readers and
 * writers through a ResilientPool, a schedule of real faults, and the invariants checked at the
 * end. Used by the `resilient-pool drill` command and usable from a test suite.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { p99Started } from './calls.js';
import { holdAndWatch } from './detect.js';
import type { FaultContext, PlannedFault } from './faults/fault.js';
import {
  checkErrorsTyped,
  checkLedger,
  checkNoLeak,
  checkReadYourWrites,
  checkUsableAfterFaults,
} from './invariants.js';
import { Recorder, statusLine } from './recorder.js';
import type { DrillReport } from './report-model.js';
import { createRng } from './rng.js';
import { SCENARIO_INFO, SCENARIOS, type ScenarioName } from './scenario-names.js';
import { planFault } from './scenarios.js';
import {
  baselineOps,
  type PlayedFault,
  type Recording,
  steadyCalls,
  summarizeFault,
} from './summary.js';
import {
  type DrillPoolOptions,
  type DrillTargets,
  nodeOfCandidate,
  openTargets,
} from './targets.js';
import { KV_TABLE, LEDGER_TABLE, prepareSchema, Workload } from './workload.js';

/** The baseline before the first fault, at least. */
const MIN_BASELINE_MS = 3_000;
/** Default length of a scenario's slot, and of the baseline. */
const DEFAULT_SLOT_MS = 10_000;
const DEFAULT_BASELINE_MS = 6_000;
/**
 * After a fault heals, at least this long before the next: a restarted primary needs a probe (1 s)
 * and the breaker's reset (1.5 s) before writes flow again, and "the pool works again after every
 * fault" is checked in this gap. A short `durationMs` with many scenarios takes longer than asked
 * rather than striking faults on a pool that has had no time to recover.
 */
const MIN_SETTLE_MS = 2_500;

export interface DrillOptions {
  /**
   * Total length of the drill, in ms (baseline, then an equal slot per scenario). Each fault is
   * followed by at least 2.5 s to recover, so a short one with many scenarios runs longer.
   * @default 6 s of baseline plus 10 s per scenario played
   */
  durationMs?: number;
  /**
   * Scenarios to play, in this order (the promotions always last).
   * @default every scenario the setup allows
   */
  scenarios?: readonly ScenarioName[];
  /**
   * Streaming replicas of the local cluster.
   * @default 2
   */
  replicas?: number;
  /**
   * Concurrent callers: a fifth of them (at least one) only write, the others only read.
   * @default 8
   */
  concurrency?: number;
  /**
   * Calls per second across all callers (80 % reads).
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
   * through the cache, and the 'redis-loss' and 'redis-hang' scenarios hit it.
   * @default no cache
   */
  redisUrl?: string;
  /** External servers instead of a local cluster (network faults only; loopback addresses). */
  external?: { primary: string; replicas: readonly string[] };
  /**
   * Options of the pool under test set over the drill's own, each group merged over the drill's
   * group of the same name: to drill a feature that is off by default.
   * @default the drill's configuration (docs/drills.md, "The setup")
   * @example runDrill({ pool: { breaker: { resetTimeout: 500 } } })
   */
  pool?: DrillPoolOptions;
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
    const needs = SCENARIO_INFO[name].needs;
    if (needs.redis && !setup.redis) {
      skipped.push(`${name}: needs a Redis for the read cache (--redis URL, or REDIS_URL)`);
    } else if (setup.external && needs.localCluster) {
      skipped.push(
        `${name}: needs the local cluster (server processes, superuser SQL), unavailable with --primary`,
      );
    } else if (setup.replicas < (needs.replicas ?? 0)) {
      skipped.push(`${name}: needs a replica`);
    } else if (needs.quorum && setup.replicas < 2) {
      skipped.push(`${name}: needs 2 replicas (quorum commit keeps acknowledged writes)`);
    } else {
      play.push(name);
    }
  }
  // The promotions are final (the old primary stays down): whatever else runs goes before them,
  // the planned one before the failover.
  const finals = play.filter((n) => SCENARIO_INFO[n].needs.final);
  const ordered = [
    ...play.filter((n) => !SCENARIO_INFO[n].needs.final),
    ...SCENARIOS.filter((n) => finals.includes(n)),
  ];
  return { play: ordered, skipped };
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

/** Plays one planned fault: prepare, inject, hold (watching), heal; heals on a failed inject. */
async function play(
  fault: PlannedFault,
  holdMs: number,
  targets: DrillTargets,
  recorder: Recorder,
  say: (line: string) => void,
): Promise<PlayedFault> {
  await fault.prepare?.();
  let promotedAt: number | undefined;
  let downAt: number | undefined;
  const context: FaultContext = {
    markPromoted: () => {
      promotedAt = recorder.now();
    },
    markDown: () => {
      downAt = recorder.now();
    },
    say,
  };
  recorder.fault = `${fault.name} (${fault.target})`;
  const start = recorder.now();
  say(`fault: ${fault.description}`);
  try {
    await fault.inject(context);
  } catch (err) {
    // Leave the cluster as usable as possible for the checks that follow the failure.
    await fault.heal(context).catch(() => {});
    throw err;
  }
  const injectedAt = recorder.now();
  const avoidedAt = await holdAndWatch(
    targets.db,
    fault.endpoint,
    holdMs,
    () => recorder.now(),
    () => recorder.started.write,
  );
  await fault.heal(context);
  const end = recorder.now();
  recorder.fault = null;
  say(`healed: ${fault.name} (${fault.target}) after ${Math.round(end - start)} ms`);
  const info = SCENARIO_INFO[fault.name];
  return {
    name: fault.name,
    description: fault.description,
    target: fault.target,
    endpoint: fault.endpoint,
    expected: info.expected,
    start,
    end,
    ...(promotedAt === undefined ? {} : { promotedAt }),
    ...(downAt === undefined ? {} : { downAt }),
    avoidedAt,
    recoveryFrom: fault.instant ? injectedAt : end,
    retired: fault.retired?.() ?? [],
    ...(fault.overload ? { overloadPlan: fault.overload() } : {}),
  };
}

export async function runDrill(options: DrillOptions = {}): Promise<DrillReport> {
  const concurrency = options.concurrency ?? 8;
  const rate = options.rate ?? 300;
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const external = options.external;
  const replicas = external ? external.replicas.length : (options.replicas ?? 2);
  const say = options.onEvent ?? (() => {});
  const { play: scenarios, skipped } = availableScenarios(options.scenarios ?? SCENARIOS, {
    external: external !== undefined,
    replicas,
    redis: options.redisUrl !== undefined,
  });
  for (const line of skipped) say(`skipped ${line}`);
  const durationMs = options.durationMs ?? DEFAULT_BASELINE_MS + DEFAULT_SLOT_MS * scenarios.length;
  // Two streams, so the schedule (which node, when) depends on the seed alone and not on how
  // many calls the workload happened to make.
  const scheduleRng = createRng(seed);
  const workloadRng = createRng(seed ^ 0x9e3779b9);
  const startedAt = new Date().toISOString();
  const writers = Math.max(1, Math.round(concurrency * 0.2));
  const readers = Math.max(1, concurrency - writers);

  const targets = await openTargets({
    replicas,
    external,
    concurrency,
    log: undefined,
    redisUrl: options.redisUrl,
    poolOptions: options.pool,
  });
  try {
    const { db } = targets;
    await prepareSchema(db);
    if (targets.cluster) await targets.cluster.waitForReplication(20_000);
    else await waitForSchemaOnReplicas(targets);
    const recorder = new Recorder(db, {
      poolWaiting: targets.poolWaiting,
      poolMax: () => targets.poolMax,
      nodeOfCandidate,
      initialPrimaryNode: targets.primary.name,
      onConnectAttempt: targets.onConnectAttempt,
    });
    const workload = new Workload(db, {
      readers,
      writers,
      rate,
      readShare: 0.8,
      cachedShare: db.cache ? 0.5 : 0,
      rng: workloadRng,
      sink: recorder,
    });
    const sampler = setInterval(() => {
      // Sampled whether or not anyone prints the status line: the report is built from samples.
      const sample = recorder.sample();
      options.onStatus?.(statusLine(sample));
    }, 1_000);
    workload.start();

    const faults: PlayedFault[] = [];
    const baselineMs = Math.max(MIN_BASELINE_MS, durationMs * 0.1);
    const slotMs = scenarios.length > 0 ? (durationMs - baselineMs) / scenarios.length : 0;
    try {
      await delay(baselineMs);
      for (const [i, name] of scenarios.entries()) {
        const slotEnd = baselineMs + (i + 1) * slotMs;
        const slotHoldMs = Math.max(1_000, slotMs * 0.35);
        await delay(scheduleRng() * slotMs * 0.1);
        const fault = planFault(name, {
          targets,
          rng: scheduleRng,
          holdMs: slotHoldMs,
          sink: recorder,
        });
        if (fault === undefined) {
          say(`skipped ${name}: no node left that it can hit`);
          skipped.push(`${name}: no node left that it can hit`);
        } else {
          const holdMs = Math.max(slotHoldMs, fault.minHoldMs ?? 0);
          faults.push(await play(fault, holdMs, targets, recorder, say));
        }
        const rest = Math.max(
          slotEnd - recorder.now(),
          i < scenarios.length - 1 ? MIN_SETTLE_MS : 0,
        );
        if (rest > 0) await delay(rest);
      }
      const rest = durationMs - recorder.now();
      if (rest > 0) await delay(rest);
    } finally {
      await workload.stop();
      clearInterval(sampler);
    }

    const samples = recorder.finalSamples();
    const recording: Recording = {
      calls: recorder.calls,
      samples,
      breakerChanges: recorder.breakerChanges,
      routingEvents: recorder.routingEvents,
      routingChanges: recorder.routingChanges,
      retryTimes: recorder.retryTimes,
      connects: recorder.connects,
      endedAt: recorder.now(),
    };
    const firstFault = faults[0]?.start ?? recorder.now();
    const baseline = {
      ops: baselineOps(samples, firstFault),
      p99: p99Started(steadyCalls(recorder.calls), 0, firstFault),
    };
    const summary = faults.map((f, i) =>
      summarizeFault(f, faults[i + 1], recording, {
        baseline,
        poolMax: targets.poolMax,
        maxLagMs: targets.maxLagMs,
      }),
    );
    const invariants = [
      await checkLedger(targets.primaryConnection(), workload.ledger),
      await checkNoLeak(db, targets.pools),
      checkErrorsTyped(workload.ledger),
      checkReadYourWrites(workload.ledger),
      checkUsableAfterFaults(faults, summary, recorder.calls, recording.endedAt),
    ];
    const steady = steadyCalls(recorder.calls);
    const errors = steady.filter((c) => !c.ok).length;
    return {
      startedAt,
      durationMs: Math.round(recorder.now()),
      seed,
      config: {
        replicas,
        concurrency,
        scenarios: faults.map((f) => f.name),
        external: external !== undefined,
        readers,
        writers,
        redis: db.cache !== undefined,
        skipped,
        queue: {
          maxWaiting: targets.queue.maxWaiting,
          acquireTimeout: targets.queue.acquireTimeout,
          maxQueueDelayMs: targets.queue.maxQueueDelayMs,
          // What the pool runs, from its own stats.
          adaptiveLimit: db.stats().endpoints[0]?.adaptiveLimit?.algorithm ?? false,
        },
      },
      endpoints: [
        'primary',
        ...targets.replicas.map((r) => r.name),
        ...(db.cache ? ['redis'] : []),
      ],
      samples,
      faults: faults.map(
        ({ avoidedAt: _a, recoveryFrom: _f, retired: _r, overloadPlan: _o, ...window }) => window,
      ),
      routingChanges: recorder.routingChanges,
      summary,
      invariants,
      totals: {
        ok: steady.length - errors,
        errors,
        retries: recorder.retryTimes.length,
        writesAcknowledged: workload.ledger.acknowledged.size,
      },
    };
  } finally {
    await targets.close();
  }
}
