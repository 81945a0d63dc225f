/**
 * `queue.adaptiveLimit` wired into an endpoint (fake pools, fake clock): what a sample is (the
 * statement's time on the server, from sending to its answer, never its wait in our queue), which
 * outcomes give one, and that the gate follows the limit.
 */
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, QueueFullError } from '../../src/index.js';
import { FakePool, pgError, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

const make = usePools();
const OK = { rows: [], rowCount: 0, command: 'SELECT', fields: [] };
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fake server that answers every statement after `ms` (fake time). */
function slowPool(max: number, ms: () => number): FakePool {
  const pool = new FakePool('p', max);
  pool.handler = async () => {
    await delay(ms());
    return OK;
  };
  return pool;
}

describe('queue.adaptiveLimit on an endpoint', () => {
  it('is off by default: the limit is the pool size and nothing is measured', async () => {
    vi.useFakeTimers();
    const db = make({ primary: slowPool(4, () => 50), health: { enabled: false } });
    const calls = Array.from({ length: 40 }, () => db.query('SELECT 1'));
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(calls);
    expect(db.stats().endpoints[0]).toMatchObject({ limit: 4, adaptiveLimit: null });
  });

  it('samples the time on the server, not the wait in the queue', async () => {
    vi.useFakeTimers();
    // Two connections, twenty callers: each call waits up to 90 ms for a permit, runs 10 ms.
    const db = make({
      primary: slowPool(2, () => 10),
      queue: { adaptiveLimit: { windowMs: 20, minSamples: 2 } },
      health: { enabled: false },
    });
    const calls = Array.from({ length: 20 }, () => db.query('SELECT 1'));
    await vi.advanceTimersByTimeAsync(200);
    await Promise.all(calls);
    const [p] = db.stats().endpoints;
    expect(p?.adaptiveLimit).toMatchObject({ algorithm: 'gradient2', rttMs: 10, baselineMs: 10 });
    // The callers did wait: their latency includes the queue, the samples did not.
    expect(p?.latency.max).toBeGreaterThan(50);
    expect(p?.limit).toBe(2);
  });

  it('a server slowing down lowers the limit; the excess is refused at admission', async () => {
    vi.useFakeTimers();
    let serverMs = 10;
    const db = make({
      primary: slowPool(8, () => serverMs),
      queue: { maxWaiting: 0, adaptiveLimit: { windowMs: 20, minSamples: 2, smoothing: 1 } },
      health: { enabled: false },
    });
    // Keep 8 callers busy: the baseline learns 10 ms.
    let running = true;
    const refused: unknown[] = [];
    const loop = async () => {
      while (running) {
        await db.query('SELECT 1').catch((err: unknown) => {
          refused.push(err);
          return delay(1);
        });
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    await vi.advanceTimersByTimeAsync(500);
    expect(db.stats().endpoints[0]?.limit).toBe(8);
    serverMs = 40;
    await vi.advanceTimersByTimeAsync(1_000);
    const cut = db.stats().endpoints[0]?.limit ?? 0;
    expect(cut).toBeLessThan(8);
    expect(cut).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((e) => e instanceof QueueFullError)).toBe(true);
    expect(db.stats().endpoints[0]?.rejected['queue-full']).toBe(refused.length);
    // Never more in flight than the limit allows (checked while the calls run).
    expect(db.stats().endpoints[0]?.inFlight).toBeLessThanOrEqual(cut);
    running = false;
    await vi.advanceTimersByTimeAsync(200);
    await Promise.all(loops);
    expect(db.stats().endpoints[0]).toMatchObject({ inFlight: 0, queued: 0, breaker: 'closed' });
  });

  it('a SQL error is an answer (a sample); a lost connection is not', async () => {
    vi.useFakeTimers();
    const primary = new FakePool('p', 4);
    let fail: 'sql' | 'socket' = 'socket';
    primary.handler = async () => {
      await delay(5);
      throw fail === 'sql' ? pgError('23505') : socketError('ECONNRESET');
    };
    const db = make({
      primary,
      queue: { adaptiveLimit: { windowMs: 10, minSamples: 1 } },
      retry: { retries: 0 },
      breaker: { enabled: false },
      health: { enabled: false },
    });
    for (let i = 0; i < 10; i++) {
      const call = db.query('SELECT 1').catch(() => {});
      await vi.advanceTimersByTimeAsync(10);
      await call;
    }
    expect(db.stats().endpoints[0]?.adaptiveLimit?.rttMs).toBeNull();
    fail = 'sql';
    for (let i = 0; i < 10; i++) {
      const call = db.query('SELECT 1').catch(() => {});
      await vi.advanceTimersByTimeAsync(10);
      await call;
    }
    expect(db.stats().endpoints[0]?.adaptiveLimit?.rttMs).toBe(5);
  });

  it('checked-out clients hold permits but give no samples', async () => {
    vi.useFakeTimers();
    const db = make({
      primary: slowPool(4, () => 5),
      queue: { adaptiveLimit: { windowMs: 10, minSamples: 1 } },
      health: { enabled: false },
    });
    for (let i = 0; i < 10; i++) {
      const client = await db.connect();
      const q = client.query('SELECT 1');
      await vi.advanceTimersByTimeAsync(10);
      await q;
      expect(db.stats().endpoints[0]?.inFlight).toBe(1);
      client.release();
    }
    expect(db.stats().endpoints[0]?.adaptiveLimit).toMatchObject({ rttMs: null, limit: 4 });
  });

  it('rejects bad options with every problem named', () => {
    let error: unknown;
    try {
      make({
        primary: new FakePool('p'),
        queue: {
          maxWaiting: -1,
          adaptiveLimit: { algorithm: 'vegas', tolerance: 2, minLimit: 0 } as never,
        },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('queue.maxWaiting');
    expect(message).toContain('queue.adaptiveLimit.tolerance: unknown option');
    expect(message).toContain('queue.adaptiveLimit.minLimit: must be an integer from 1');
  });
});
