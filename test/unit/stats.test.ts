/**
 * stats(): the fields operators size pools and set alerts from (latency and wait percentiles,
 * pending requests, breaker transitions, retries by reason, budget refusals, failover counts)
 * and its plain, stable, JSON-able shape.
 */
import { describe, expect, it, vi } from 'vitest';
import { FakePool, pgError, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

const make = usePools();

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('stats()', () => {
  it('reports statement latency and wait percentiles per endpoint', async () => {
    const primary = new FakePool('p');
    primary.handler = async () => {
      await delay(20);
      return { rows: [], rowCount: 0, command: 'SELECT', fields: [] };
    };
    const db = make({ primary, health: { enabled: false } });
    await Promise.all(Array.from({ length: 5 }, () => db.query('SELECT 1')));
    const [p] = db.stats().endpoints;
    expect(p?.latency.count).toBe(5);
    expect(p?.latency.p50).toBeGreaterThanOrEqual(15);
    expect(p?.latency.max).toBeGreaterThanOrEqual(p?.latency.p99 ?? 0);
    expect(p?.wait.count).toBe(5);
    // Nothing waited on others here: the wait is the fake pool's next-tick hand-over.
    expect(p?.wait.p99).toBeLessThan(p?.latency.p50 ?? 0);
  });

  it('counts a queued call as pending until it gets a client, then not', async () => {
    const primary = new FakePool('p', 1);
    let unblock: () => void = () => {};
    const blocked = new Promise<void>((resolve) => {
      unblock = resolve;
    });
    primary.handler = async () => {
      await blocked;
      return { rows: [], rowCount: 0, command: 'SELECT', fields: [] };
    };
    const db = make({ primary, health: { enabled: false } });
    const calls = Array.from({ length: 4 }, () => db.query('SELECT 1'));
    await delay(5);
    const during = db.stats();
    expect(during.endpoints[0]).toMatchObject({ maxConnections: 1, inFlight: 1, pending: 3 });
    expect(during.waitingCount).toBe(3);
    unblock();
    await Promise.all(calls);
    const after = db.stats();
    expect(after.endpoints[0]?.pending).toBe(0);
    expect(after.waitingCount).toBe(0);
    // The queued calls' waits were recorded: the slowest waited for the other three.
    expect(after.endpoints[0]?.wait.count).toBe(4);
  });

  it('counts retries by the failure that caused them, and circuit transitions by state', async () => {
    const primary = new FakePool('p');
    const replica = new FakePool('r1');
    let failing = true;
    replica.handler = () => {
      if (failing) throw socketError('ECONNRESET');
      return { rows: [], rowCount: 0, command: 'SELECT', fields: [] };
    };
    const db = make({
      primary,
      replicas: [replica],
      health: { enabled: false },
      breaker: { consecutiveFailures: 2, resetTimeout: 50 },
    });
    await db.read('SELECT 1', [], { idempotent: true });
    await db.read('SELECT 1', [], { idempotent: true });
    const stats = db.stats();
    const r = stats.endpoints.find((e) => e.name === 'replica-1');
    expect(r?.retriesByReason.connection).toBe(2);
    expect(r?.retries).toBe(2);
    expect(r?.breakerTransitions).toEqual({ open: 1, halfOpen: 0, closed: 0 });
    failing = false;
    await vi.waitFor(() => expect(db.stats().endpoints[1]?.breaker).toBe('half-open'));
    await db.read('SELECT 1', [], { idempotent: true });
    expect(db.stats().endpoints[1]?.breakerTransitions).toEqual({
      open: 1,
      halfOpen: 1,
      closed: 1,
    });
  });

  it('counts retries the budget refused', async () => {
    const primary = new FakePool('p');
    primary.handler = () => {
      throw socketError('ECONNREFUSED');
    };
    const db = make({
      primary,
      health: { enabled: false },
      breaker: { enabled: false },
      retry: { retries: 3, minTimeout: 1, maxTimeout: 1, budgetPercent: 0, budgetMinRetries: 1 },
    });
    await expect(db.write('INSERT 1', [], { idempotent: true })).rejects.toThrow();
    await expect(db.write('INSERT 2', [], { idempotent: true })).rejects.toThrow();
    // One retry from the reserve, then the budget refuses the rest.
    expect(db.stats().retryBudgetExhausted).toBeGreaterThanOrEqual(1);
    expect(db.stats().endpoints[0]?.retries).toBe(1);
  });

  it('is plain data: JSON round-trips to the same object, spreading shows no method', async () => {
    const primary = new FakePool('p');
    primary.handler = () => {
      throw pgError('23505');
    };
    const db = make({ primary, health: { enabled: false } });
    await expect(db.query('INSERT 1')).rejects.toThrow();
    const stats = db.stats();
    expect(Object.keys(stats)).not.toContain('toJSON');
    const json = JSON.parse(JSON.stringify(stats));
    expect(json).toEqual({ ...stats });
    expect(stats.toJSON()).toEqual(json);
    // The copy is detached: changing it leaves the next snapshot alone.
    stats.toJSON().endpoints[0]!.calls = -1;
    expect(stats.endpoints[0]?.calls).toBe(1);
    expect(Object.keys(json).sort()).toEqual([
      'consolidation',
      'endpoints',
      'failovers',
      'idleCount',
      'retryBudgetExhausted',
      'totalCount',
      'waitingCount',
    ]);
    expect(Object.keys(json.endpoints[0]).sort()).toEqual(
      [
        'breaker',
        'breakerTransitions',
        'calls',
        'connectAllowance',
        'down',
        'ejections',
        'failures',
        'health',
        'idle',
        'inFlight',
        'inUse',
        'lagBytes',
        'lagMs',
        'adaptiveLimit',
        'latency',
        'limit',
        'maxConnections',
        'name',
        'outlierEjections',
        'pacedConnects',
        'pending',
        'queued',
        'readmissions',
        'rejected',
        'retries',
        'retriesByReason',
        'role',
        'routing',
        'routingReason',
        'share',
        'slowCalls',
        'sqlErrors',
        'successes',
        'total',
        'wait',
      ].sort(),
    );
  });
});
