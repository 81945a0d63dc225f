/**
 * Outlier ejection on a real cluster: a SIGSTOPped replica (one of two) stops getting new reads
 * as soon as its probe goes unanswered for `outlier.slowMs`, while its circuit is still closed
 * and before the health monitor's probe timeout declares it down; with both replicas stopped,
 * at most half are ejected (the cap), and with the cap at 100% both are, reads going to them
 * anyway (panic routing) rather than to the primary, until the hard guards take them out.
 *
 * The health probe's timeout is set well above `slowMs` here, so that the two mechanisms cannot
 * be confused on a slow machine: the ejection seen is the outlier detector's. How long it took is
 * printed, never asserted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ResilientPool, type ResilientPoolOptions } from '../../src/index.js';
import { NEEDS_LOCAL_CLUSTER, useCluster } from '../support/cluster.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 2 });
const open: ResilientPool[] = [];

const SLOW_MS = 400;

function makeDb(options: Partial<ResilientPoolOptions> = {}): ResilientPool {
  const { primary, replicas } = handle.cluster;
  const db = new ResilientPool({
    primary: primary.createPool({ max: 4 }),
    replicas: replicas.map((r) => r.createPool({ max: 4 })),
    logger: false,
    routing: { balancer: 'round-robin' },
    health: { intervalMs: 250, timeoutMs: 6_000 },
    outlier: { slowMs: SLOW_MS },
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

/** Every event of the pool, in order, with the time it came. */
function record(db: ResilientPool) {
  const events: Array<{
    at: number;
    kind: string;
    endpoint: string;
    state?: string;
    reason?: string | null;
  }> = [];
  db.on('routing', (e) => events.push({ at: Date.now(), kind: 'routing', ...e }));
  db.on('breaker', (e) => events.push({ at: Date.now(), kind: 'breaker', ...e }));
  db.on('down', (e) => events.push({ at: Date.now(), kind: 'down', endpoint: e.endpoint }));
  db.on('eject', (e) => events.push({ at: Date.now(), kind: 'eject', endpoint: e.endpoint }));
  return events;
}

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

const routingOf = (db: ResilientPool, name: string) =>
  db.stats().endpoints.find((e) => e.name === name)!;

describe.skipIf(!handle.canControlProcesses)(`outlier ejection (${NEEDS_LOCAL_CLUSTER})`, () => {
  it('stops sending reads to a SIGSTOPped replica before its circuit opens or it is declared down', async () => {
    const db = makeDb();
    const events = record(db);
    const [victim] = handle.cluster.replicas;
    await until('first probes', () =>
      db.stats().endpoints.every((e) => e.role === 'primary' || e.health === 'healthy'),
    );
    const traffic = readLoad(db, 10);
    await until(
      'reads on both replicas',
      () => new Set(traffic.reads.map((r) => r.endpoint)).size >= 2,
    );
    const pausedAt = Date.now();
    victim!.pause();
    const ejected = (await until(
      'the outlier ejection',
      () =>
        // The outlier detector's (silent), not the one a down replica is reported with.
        events.find(
          (e) =>
            e.kind === 'routing' &&
            e.endpoint === victim!.name &&
            e.state === 'ejected' &&
            /silent/.test(e.reason ?? ''),
        ),
      { timeoutMs: 10_000 },
    ))!;
    // Reads go on meanwhile; keep them going a little past the ejection.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stats = routingOf(db, victim!.name);
    victim!.resume();
    await traffic.stop();
    console.info(
      `outlier ejection of a SIGSTOPped replica: ${ejected.at - pausedAt} ms after the pause (slowMs ${SLOW_MS})`,
    );
    // Ejected while its circuit was closed and before any hard guard moved.
    const hardBefore = events.filter(
      (e) =>
        e.endpoint === victim!.name &&
        e.at <= ejected.at &&
        (e.kind === 'down' || e.kind === 'eject' || (e.kind === 'breaker' && e.state === 'open')),
    );
    expect(hardBefore).toEqual([]);
    expect(stats).toMatchObject({ routing: 'ejected', breaker: 'closed', down: false });
    expect(stats.routingReason).toMatch(/silent/);
    // No read that started after the ejection went to the frozen replica.
    const after = traffic.reads.filter((r) => r.at > ejected.at);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((r) => r.endpoint === victim!.name)).toEqual([]);
    expect(after.filter((r) => r.endpoint === undefined)).toEqual([]);
  });

  it('with both replicas stopped ejects only one of them (maxEjectionPercent 50)', async () => {
    const db = makeDb();
    await until('first probes', () =>
      db.stats().endpoints.every((e) => e.role === 'primary' || e.health === 'healthy'),
    );
    const replicas = handle.cluster.replicas;
    for (const r of replicas) r.pause();
    try {
      // Reads sent now hang; they only serve to show the replicas silent sooner.
      const hanging = Array.from({ length: 4 }, () =>
        db.read(PORT, [], { timeout: 2_000 }).catch(() => undefined),
      );
      await until('an outlier ejection', () =>
        replicas.some((r) => routingOf(db, r.name).routing === 'ejected'),
      );
      // Well past the point where the second would have been ejected without the cap.
      await new Promise((resolve) => setTimeout(resolve, 4 * SLOW_MS));
      const states = replicas.map((r) => routingOf(db, r.name).routing).sort();
      expect(states).toEqual(['ejected', 'routed']);
      for (const r of replicas) r.resume();
      await Promise.all(hanging);
    } finally {
      for (const r of replicas) r.resume();
    }
  });

  it('with the cap at 100% and both stopped, routes reads to them anyway (panic), not the primary', async () => {
    const db = makeDb({ outlier: { slowMs: SLOW_MS, maxEjectionPercent: 100 } });
    const events = record(db);
    await until('first probes', () =>
      db.stats().endpoints.every((e) => e.role === 'primary' || e.health === 'healthy'),
    );
    const replicas = handle.cluster.replicas;
    for (const r of replicas) r.pause();
    try {
      const hanging = Array.from({ length: 4 }, () =>
        db.read(PORT, [], { timeout: 1_000 }).catch(() => undefined),
      );
      await until('panic routing', () =>
        replicas.every((r) => routingOf(db, r.name).routing === 'panic'),
      );
      const before = db.stats().endpoints.map((e) => [e.name, e.calls] as const);
      // A read in panic goes to a (frozen) replica: it is sent there and times out.
      const panicRead = await db.read(PORT, [], { timeout: 500 }).then(
        () => 'answered',
        (err: { code?: string }) => err.code,
      );
      const after = db.stats().endpoints.map((e) => [e.name, e.calls] as const);
      const grew = after.filter(([, calls], i) => calls > before[i]![1]).map(([name]) => name);
      expect(grew).not.toContain('primary');
      expect(grew.some((name) => replicas.some((r) => r.name === name))).toBe(true);
      expect(panicRead).not.toBe('answered');
      expect(events.filter((e) => e.kind === 'routing' && e.state === 'panic').length).toBe(2);
      for (const r of replicas) r.resume();
      await Promise.all(hanging);
      // Answering again, they come back (through slow start) and serve reads.
      await until('both back in routing', () =>
        replicas.every((r) => ['routed', 'slow-start'].includes(routingOf(db, r.name).routing)),
      );
      const { rows } = await db.read<{ port: number }>(PORT);
      expect(replicas.map((r) => r.name)).toContain(nameOf(rows[0]!.port));
    } finally {
      for (const r of replicas) r.resume();
    }
  });
});
