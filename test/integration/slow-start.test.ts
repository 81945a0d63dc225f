/**
 * Slow start and storm control on a real cluster. A replica that comes back (SIGSTOP then SIGCONT,
 * or SIGKILL then a restart) gets a share of reads that ramps up over `slowStart.windowMs`,
 * counted per endpoint from where the reads went; after the restart, the connections opened to
 * it in the first second are no more than its pool's max, counted with the pool's 'connect'
 * events, and they open one first, then more (connection pacing).
 *
 * The share is compared between the start and the end of the ramp, as counts of reads: how long
 * anything took is printed, never asserted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 2 });
const open: ResilientPool[] = [];

const WINDOW_MS = 4_000;
const POOL_MAX = 4;

function makeDb(options: Partial<ResilientPoolOptions> = {}): ResilientPool {
  const { primary, replicas } = handle.cluster;
  const db = new ResilientPool({
    primary: primary.createPool({ max: POOL_MAX }),
    replicas: replicas.map((r) => r.createPool({ max: POOL_MAX })),
    logger: false,
    routing: { balancer: 'round-robin' },
    health: { intervalMs: 200, timeoutMs: 500 },
    slowStart: { windowMs: WINDOW_MS, minWeightPercent: 10 },
    ...options,
  });
  open.push(db);
  return db;
}

afterEach(async () => {
  for (const node of handle.cluster.replicas) node.resume();
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 2_000 })));
});

const PORT = "SELECT current_setting('port')::int AS port";
const nameOf = (port: number) => handle.cluster.nodes.find((n) => n.port === port)?.name;

const routingOf = (db: ResilientPool, name: string) =>
  db.stats().endpoints.find((e) => e.name === name)!;

/**
 * Reads started every `everyMs` whatever became of the earlier ones (independent callers, as a
 * service has: a read stuck on a frozen replica does not hold the next one back), until stopped;
 * each read's start time and where it went.
 */
function readLoad(db: ResilientPool, everyMs: number) {
  const reads: Array<{ at: number; endpoint: string | undefined }> = [];
  const running: Array<Promise<void>> = [];
  const timer = setInterval(() => {
    const at = Date.now();
    running.push(
      db.read<{ port: number }>(PORT, [], { timeout: 8_000 }).then(
        ({ rows }) => {
          reads.push({ at, endpoint: nameOf(rows[0]!.port) });
        },
        () => {
          reads.push({ at, endpoint: undefined });
        },
      ),
    );
  }, everyMs);
  return {
    reads,
    stop: async () => {
      clearInterval(timer);
      await Promise.all(running);
    },
  };
}

/** The victim's fraction of the reads that started in [from, to). */
function shareOfReads(
  reads: ReadonlyArray<{ at: number; endpoint: string | undefined }>,
  victim: string,
  from: number,
  to: number,
): { share: number; count: number } {
  const inWindow = reads.filter((r) => r.at >= from && r.at < to && r.endpoint !== undefined);
  const mine = inWindow.filter((r) => r.endpoint === victim).length;
  return { share: inWindow.length === 0 ? 0 : mine / inWindow.length, count: inWindow.length };
}

/** Waits for the victim's slow start to begin; returns when (from the 'routing' event). */
function slowStartOf(db: ResilientPool, victim: string): () => number | undefined {
  let at: number | undefined;
  db.on('routing', (e) => {
    if (e.endpoint === victim && e.state === 'slow-start' && at === undefined) at = Date.now();
  });
  return () => at;
}

describe.skipIf(!handle.canControlProcesses)(`slow start (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('ramps the share of reads of a replica back from SIGSTOP, from a floor to its full share', async () => {
    const db = makeDb();
    const victim = handle.cluster.replicas[0]!;
    await until('first probes', () =>
      db.stats().endpoints.every((e) => e.role === 'primary' || e.health === 'healthy'),
    );
    const began = slowStartOf(db, victim.name);
    const traffic = readLoad(db, 10);
    victim.pause();
    try {
      await until(
        'the replica out of routing',
        () => routingOf(db, victim.name).routing === 'ejected',
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      victim.resume();
    }
    const start = (await until('its slow start', began, { timeoutMs: 15_000 }))!;
    await until('the end of the ramp', () => routingOf(db, victim.name).routing === 'routed', {
      timeoutMs: 20_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await traffic.stop();
    const early = shareOfReads(traffic.reads, victim.name, start, start + WINDOW_MS / 4);
    const late = shareOfReads(
      traffic.reads,
      victim.name,
      start + (3 * WINDOW_MS) / 4,
      start + WINDOW_MS,
    );
    const after = shareOfReads(traffic.reads, victim.name, start + WINDOW_MS, Date.now());
    console.info(
      `slow start after SIGCONT: the replica's share of reads ${pct(early.share)} in the first quarter of the ramp (${early.count} reads), ${pct(late.share)} in the last, ${pct(after.share)} after`,
    );
    expect(early.count).toBeGreaterThan(0);
    // Some reads at once (the floor), fewer than half of them, more by the end.
    expect(early.share).toBeGreaterThan(0);
    expect(early.share).toBeLessThan(late.share);
    expect(early.share).toBeLessThan(0.4);
    // Reads in flight when it froze may fail (ended when it was declared down, past the retry
    // budget); none started during the ramp does.
    expect(traffic.reads.filter((r) => r.at >= start && r.endpoint === undefined)).toEqual([]);
  });

  it('after SIGKILL and restart: a ramping share, and connections paced (<= max in the first second)', async () => {
    const db = makeDb();
    const victim = handle.cluster.replicas[1]!;
    await until('first probes', () =>
      db.stats().endpoints.every((e) => e.role === 'primary' || e.health === 'healthy'),
    );
    const connects: number[] = [];
    db.on('connect', (_client, endpoint) => {
      if (endpoint === victim.name) connects.push(Date.now());
    });
    const began = slowStartOf(db, victim.name);
    const traffic = readLoad(db, 10);
    await victim.kill();
    await until('the replica declared down', () => routingOf(db, victim.name).down, {
      timeoutMs: 10_000,
    });
    connects.length = 0;
    const restartedAt = Date.now();
    await victim.start();
    const start = (await until('its slow start', began, { timeoutMs: 20_000 }))!;
    const upAt = Date.now();
    await until('the end of the ramp', () => routingOf(db, victim.name).routing === 'routed', {
      timeoutMs: 20_000,
    });
    await traffic.stop();
    // Connections opened in the first second after it answered again.
    const firstAt = connects[0] ?? upAt;
    const inFirstSecond = connects.filter((t) => t - firstAt < 1_000).length;
    const early = shareOfReads(traffic.reads, victim.name, start, start + WINDOW_MS / 4);
    const late = shareOfReads(
      traffic.reads,
      victim.name,
      start + (3 * WINDOW_MS) / 4,
      start + WINDOW_MS,
    );
    console.info(
      `after restart (${upAt - restartedAt} ms to slow start): ${inFirstSecond} connections in the first second (max ${POOL_MAX}), opened at +${connects.map((t) => t - firstAt).join(', +')} ms; share ${pct(early.share)} early, ${pct(late.share)} late`,
    );
    expect(connects.length).toBeGreaterThan(0);
    expect(inFirstSecond).toBeLessThanOrEqual(POOL_MAX);
    expect(early.share).toBeLessThan(late.share);
    expect(traffic.reads.filter((r) => r.at >= start && r.endpoint === undefined)).toEqual([]);
  });
});

describe.skipIf(!handle.canControlProcesses)(`connection pacing (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('a primary back from SIGKILL under a crowd of writers: one connection, then more, <= max in the first second', async () => {
    const db = makeDb({ health: { intervalMs: 200, timeoutMs: 500 } });
    const primary = handle.cluster.primary;
    const connects: number[] = [];
    db.on('connect', (_client, endpoint) => {
      if (endpoint === 'primary') connects.push(Date.now());
    });
    // Sixteen independent writers on a pool of four: when the primary is back, they all want in.
    const state = { stop: false, failures: 0, successes: 0 };
    const writer = async () => {
      while (!state.stop) {
        try {
          await db.write('SELECT pg_sleep(0.01)', [], { timeout: 3_000 });
          state.successes++;
        } catch {
          state.failures++;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };
    const writers = Promise.all(Array.from({ length: 16 }, writer));
    try {
      await until('writes flowing', () => state.successes > 20);
      await primary.kill();
      await until('the primary declared down', () => db.stats().endpoints[0]!.down, {
        timeoutMs: 10_000,
      });
      connects.length = 0;
      const pacedBefore = db.stats().endpoints[0]!.pacedConnects;
      await primary.start();
      const okBefore = state.successes;
      await until('writes flowing again', () => state.successes > okBefore + 50, {
        timeoutMs: 20_000,
      });
      const firstAt = connects[0]!;
      const inFirstSecond = connects.filter((t) => t - firstAt < 1_000).length;
      const paced = db.stats().endpoints[0]!.pacedConnects - pacedBefore;
      console.info(
        `primary back: ${inFirstSecond} connections in the first second (max ${POOL_MAX}), opened at +${connects.map((t) => t - firstAt).join(', +')} ms; ${paced} calls waited for the pacing allowance`,
      );
      expect(inFirstSecond).toBeLessThanOrEqual(POOL_MAX);
      // Pacing engaged: callers that would have opened a connection at once waited their turn.
      expect(paced).toBeGreaterThan(0);
      expect(db.stats().endpoints[0]!.connectAllowance).toBeNull();
    } finally {
      state.stop = true;
      await writers;
    }
  });
});

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}
