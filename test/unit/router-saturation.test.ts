/**
 * Read fallback and saturation: the primary takes reads only when no replica can for a reason of
 * health (down, circuit not closed, ejected or lagging); a healthy replica whose queue is full is
 * back-pressure, and the read is refused there (QueueFullError) instead of taking a slot on the
 * primary that writes need. First the router alone, on fake endpoints; then the pool, on fake pg
 * pools, where the read's refusal and the write that still goes through are the point.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Endpoint } from '../../src/endpoint/endpoint.js';
import { NoHealthyEndpointError, QueueFullError } from '../../src/index.js';
import { createBalancer } from '../../src/routing/balancers/create-balancer.js';
import { Router } from '../../src/routing/router.js';
import { FakePool, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

/** An endpoint as the router sees it: health, and a queue that is full or not. */
class FakeEndpoint {
  readonly weight = 1;
  share = 1;
  inFlight = 0;
  full = false;
  isDown = false;
  breakerState: 'closed' | 'open' | 'half-open' = 'closed';
  readonly health = { state: 'healthy' as string, reason: null as string | null };
  constructor(
    readonly name: string,
    readonly role: 'primary' | 'replica' = 'replica',
  ) {}
  load(): number {
    return this.inFlight;
  }
  isUsable(): boolean {
    return (
      !this.full &&
      !this.isDown &&
      this.breakerState === 'closed' &&
      this.health.state !== 'ejected' &&
      this.health.state !== 'lagging'
    );
  }
}

function routed({ fallbackToPrimary = true, count = 2 } = {}) {
  const primary = new FakeEndpoint('primary', 'primary');
  const fakes = Array.from({ length: count }, (_, i) => new FakeEndpoint(`r${i + 1}`));
  const router = new Router(
    primary as unknown as Endpoint,
    fakes as unknown as Endpoint[],
    createBalancer('round-robin'),
    fallbackToPrimary,
  );
  const [r1, r2] = fakes as [FakeEndpoint, FakeEndpoint];
  const asEndpoints = (...list: FakeEndpoint[]) => new Set(list as unknown as Endpoint[]);
  return { router, primary, r1, r2, asEndpoints };
}

describe('router: saturation is not an outage', () => {
  it('sends a read to a saturated healthy replica (the least loaded), never to the primary', () => {
    const { router, r1, r2 } = routed();
    r1.full = true;
    r2.full = true;
    r1.inFlight = 9;
    r2.inFlight = 4;
    expect(router.forRead(null)?.name).toBe('r2');
    expect(router.primaryTakesReads(null)).toBe(false);
  });

  it('a replica with room is still the first choice', () => {
    const { router, r1 } = routed();
    r1.full = true;
    expect([router.forRead(null)?.name, router.forRead(null)?.name]).toEqual(['r2', 'r2']);
  });

  it.each([
    ['declared down', (r: FakeEndpoint) => (r.isDown = true)],
    ['circuit open', (r: FakeEndpoint) => (r.breakerState = 'open')],
    ['circuit half-open', (r: FakeEndpoint) => (r.breakerState = 'half-open')],
    ['ejected by the health monitor', (r: FakeEndpoint) => (r.health.state = 'ejected')],
    ['lagging', (r: FakeEndpoint) => (r.health.state = 'lagging')],
  ])('falls back to the primary when every replica is out for health: %s', (_, spoil) => {
    const { router, r1, r2 } = routed();
    spoil(r1);
    spoil(r2);
    expect(router.forRead(null)?.name).toBe('primary');
    expect(router.primaryTakesReads(null)).toBe(true);
  });

  it('one replica down and the other saturated: the read is refused at the saturated one', () => {
    const { router, r1, r2 } = routed();
    r1.isDown = true;
    r2.full = true;
    expect(router.forRead(null)?.name).toBe('r2');
  });

  it('without fallback: a saturated replica refuses; with none healthy there is nowhere', () => {
    const { router, r1, r2 } = routed({ fallbackToPrimary: false });
    r1.full = true;
    r2.full = true;
    expect(router.forRead(null)?.name).toBe('r1');
    r1.isDown = true;
    r2.breakerState = 'open';
    expect(router.forRead(null)).toBeUndefined();
  });

  it('after a failure: the failed replica again rather than the primary while the other is saturated', () => {
    const { router, r1, r2, asEndpoints } = routed();
    r2.full = true;
    const tried = asEndpoints(r1);
    expect(router.forRead(tried)?.name).toBe('r1');
    // Moving on needs somewhere to move: the saturated replica is not, nor is the primary.
    expect(router.hasReadAlternative(tried)).toBe(false);
  });

  it('after a failure on a saturated replica: still no spill while the other is healthy', () => {
    const { router, r1, r2, asEndpoints } = routed();
    r1.full = true;
    r2.full = true;
    expect(router.forRead(asEndpoints(r2))?.name).toBe('r1');
    expect(router.hasReadAlternative(asEndpoints(r2))).toBe(false);
  });

  it('the primary takes a read once every healthy replica failed this call', () => {
    const { router, r1, r2, asEndpoints } = routed();
    const tried = asEndpoints(r1, r2);
    expect(router.primaryTakesReads(tried)).toBe(true);
    expect(router.forRead(tried)?.name).toBe('primary');
    expect(router.hasReadAlternative(tried)).toBe(true);
  });

  it('with no replicas the primary serves every read, saturated or not', () => {
    const { router, primary } = routed({ count: 0 });
    primary.full = true;
    expect(router.forRead(null)?.name).toBe('primary');
    expect(router.primaryTakesReads(null)).toBe(true);
  });
});

describe('pool: a read burst on saturated replicas leaves the primary to writes', () => {
  const make = usePools();

  it('refuses reads with QueueFullError at the replicas while writes still run on the primary', async () => {
    const primary = new FakePool('p', 1);
    const r1 = new FakePool('r1', 1);
    const r2 = new FakePool('r2', 1);
    r1.connectHangs = true;
    r2.connectHangs = true;
    const db = make({
      primary,
      replicas: [r1, r2],
      queue: { maxWaiting: 1, acquireTimeout: 60_000 },
      retry: { retries: 0 },
    });
    // Each replica: one read holding its only permit, one waiting; then the queues are full.
    const stuck = Array.from({ length: 4 }, () => db.read('SELECT pg_sleep(1000)'));
    for (const s of stuck) s.catch(() => {});
    const refused = await db.read('SELECT 1').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(QueueFullError);
    expect((refused as QueueFullError).endpoint).toMatch(/^replica-[12]$/);
    await expect(db.write('INSERT INTO t VALUES (1)')).resolves.toBeDefined();
    expect(primary.statements).toEqual(['INSERT INTO t VALUES (1)']);
    const [p, s1, s2] = db.stats().endpoints;
    expect(p?.rejected['queue-full']).toBe(0);
    expect((s1?.rejected['queue-full'] ?? 0) + (s2?.rejected['queue-full'] ?? 0)).toBe(1);
  });

  it("still falls back to the primary when the only replica's circuit is open", async () => {
    const primary = new FakePool('p');
    const r1 = new FakePool('r1');
    r1.connectError = socketError('ECONNREFUSED');
    const db = make({
      primary,
      replicas: [r1],
      breaker: { volumeThreshold: 1 },
      retry: { retries: 0 },
    });
    await db.read('SELECT 1').catch(() => {});
    expect(db.stats().endpoints[1]?.breaker).toBe('open');
    await expect(db.read('SELECT 2')).resolves.toBeDefined();
    expect(primary.statements).toEqual(['SELECT 2']);
  });

  it('without fallback, saturated replicas refuse with QueueFullError, not NoHealthyEndpointError', async () => {
    const primary = new FakePool('p');
    const r1 = new FakePool('r1', 1);
    r1.connectHangs = true;
    const db = make({
      primary,
      replicas: [r1],
      queue: { maxWaiting: 0, acquireTimeout: 60_000 },
      retry: { retries: 0 },
      routing: { fallbackToPrimary: false },
    });
    db.read('SELECT pg_sleep(1000)').catch(() => {});
    const err = await db.read('SELECT 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect(err).not.toBeInstanceOf(NoHealthyEndpointError);
  });
});

describe('pool: shedding by queue delay (queue.maxQueueDelayMs)', () => {
  const make = usePools();
  /** A replica of one connection whose statements take `ms` (fake timers). */
  const slowReplica = (name: string, ms: number) => {
    const pool = new FakePool(name, 1);
    pool.handler = () =>
      new Promise((resolve) =>
        setTimeout(() => resolve({ rows: [], rowCount: 0, command: 'SELECT', fields: [] }), ms),
      );
    return pool;
  };
  /** A pool over two such replicas, round-robin, shedding past 20 ms of expected wait. */
  const shedding = (r1: FakePool, r2: FakePool) =>
    make({
      primary: new FakePool('p'),
      replicas: [r1, r2],
      queue: { maxWaiting: 100, acquireTimeout: 60_000, maxQueueDelayMs: 20 },
      retry: { retries: 0 },
      routing: { balancer: 'round-robin' },
      health: { enabled: false },
    });

  it('refuses at once while the queue stands past the bound, moves reads to a replica with room, and recovers', async () => {
    vi.useFakeTimers();
    const r1 = slowReplica('r1', 30);
    const r2 = slowReplica('r2', 30);
    const db = shedding(r1, r2);
    // Each replica: one read running, two waiting, all since t=0.
    const first = Array.from({ length: 6 }, () => db.read('SELECT 1'));
    await vi.advanceTimersByTimeAsync(30);
    // t=30: each replica finished one read, and its oldest waiter has waited 30 ms: overload.
    const refused = await db.read('SELECT 2').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(QueueFullError);
    expect((refused as Error).message).toMatch(
      /^Wait queue of endpoint "replica-[12]" is full: its oldest call has waited 30 ms \(queue\.maxQueueDelayMs 20\)$/,
    );
    const [, s1, s2] = db.stats().endpoints;
    expect((s1?.rejected['queue-full'] ?? 0) + (s2?.rejected['queue-full'] ?? 0)).toBe(1);
    await vi.advanceTimersByTimeAsync(60);
    await Promise.all(first);
    // The queues drained: reads are queued again, and answered.
    const again = Array.from({ length: 4 }, () => db.read('SELECT 3'));
    await vi.advanceTimersByTimeAsync(60);
    await expect(Promise.all(again)).resolves.toHaveLength(4);
    expect(r1.statements.filter((t) => t === 'SELECT 2')).toEqual([]);
    expect(r2.statements.filter((t) => t === 'SELECT 2')).toEqual([]);
  });

  it('sends reads past a replica whose queue stands to one that keeps up', async () => {
    vi.useFakeTimers();
    const slow = slowReplica('r1', 30);
    const fast = slowReplica('r2', 1);
    const db = shedding(slow, fast);
    // Round-robin: three reads on each; the fast replica is done with its three by t=3.
    const burst = Array.from({ length: 6 }, (_, i) => db.read(`SELECT ${i}`));
    await vi.advanceTimersByTimeAsync(30);
    // t=30: the slow replica finished one read and its oldest waiter has waited 30 ms.
    const next = [db.read('SELECT next'), db.read('SELECT next')];
    await vi.advanceTimersByTimeAsync(100);
    await expect(Promise.all([...burst, ...next])).resolves.toHaveLength(8);
    expect(fast.statements.filter((t) => t === 'SELECT next')).toHaveLength(2);
    expect(slow.statements.filter((t) => t === 'SELECT next')).toHaveLength(0);
    expect(db.stats().endpoints.every((e) => e.rejected['queue-full'] === 0)).toBe(true);
  });
});
