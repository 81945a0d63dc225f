import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ResilientPoolEvents } from '../../src/index.js';
import { FakePool, socketError } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

/** A fake server answering the health probe like PostgreSQL would. */
function answerProbes(
  pool: FakePool,
  state: { recovery: boolean; lsn: string; receive?: string; age?: number | null },
) {
  pool.handler = (text) => {
    if (!text.includes('pg_is_in_recovery')) return { rows: [{ ok: 1 }], rowCount: 1 };
    return {
      rows: [
        {
          in_recovery: state.recovery,
          lsn: state.lsn,
          receive_lsn: state.receive ?? (state.recovery ? state.lsn : null),
          replay_age_ms: state.age ?? (state.recovery ? 60_000 : null),
        },
      ],
      rowCount: 1,
    };
  };
}

describe('health monitor', () => {
  const make = usePools();
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function setup(extra: Record<string, unknown> = {}) {
    const primary = new FakePool('p');
    const r1 = new FakePool('r1');
    const r2 = new FakePool('r2');
    answerProbes(primary, { recovery: false, lsn: '0/3000000' });
    answerProbes(r1, { recovery: true, lsn: '0/3000000' });
    answerProbes(r2, { recovery: true, lsn: '0/3000000' });
    const db = make({
      primary,
      replicas: [r1, r2],
      health: { intervalMs: 1_000, timeoutMs: 500 },
      ...extra,
    });
    const events: Array<[string, unknown]> = [];
    db.on('eject', (e: ResilientPoolEvents['eject']) => events.push(['eject', e]));
    db.on('readmit', (e: ResilientPoolEvents['readmit']) => events.push(['readmit', e]));
    return { db, primary, r1, r2, events };
  }

  it('marks replicas healthy with no lag when they have replayed everything (an idle primary is not lag)', async () => {
    const { db } = setup({ routing: { maxLagMs: 1_000 } });
    await vi.advanceTimersByTimeAsync(1_000);
    const replica = db.stats().endpoints[1]!;
    expect(replica).toMatchObject({ health: 'healthy', lagBytes: 0, lagMs: 0 });
  });

  it('ejects a replica whose probe fails, keeps reads off it, re-admits it only after a probe passes', async () => {
    const { db, r1, r2, events } = setup();
    await vi.advanceTimersByTimeAsync(1_000);
    r1.connectError = socketError('ECONNREFUSED');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(events).toEqual([
      ['eject', { endpoint: 'replica-1', reason: expect.stringContaining('probe failed') }],
    ]);
    expect(db.stats().endpoints[1]?.health).toBe('ejected');
    r2.statements.length = 0;
    for (let i = 0; i < 4; i++) await db.read('SELECT 1');
    expect(r2.statements.filter((s) => s === 'SELECT 1')).toHaveLength(4);
    // Healed, but re-admitted only by a passing probe.
    r1.connectError = undefined;
    expect(db.stats().endpoints[1]?.health).toBe('ejected');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(events.at(-1)).toEqual([
      'readmit',
      { endpoint: 'replica-1', ejectedMs: expect.any(Number) },
    ]);
    expect(db.stats().endpoints[1]?.health).toBe('healthy');
  });

  it('backs off re-admission after repeated ejections', async () => {
    const { r1, events } = setup();
    const flap = async () => {
      r1.connectError = socketError('ECONNREFUSED');
      await vi.advanceTimersByTimeAsync(1_000);
      r1.connectError = undefined;
    };
    await flap(); // ejection 1: back after 1 s
    await vi.advanceTimersByTimeAsync(1_000);
    expect(events.map(([e]) => e)).toEqual(['eject', 'readmit']);
    await flap(); // ejection 2: back no sooner than 2 s after
    await vi.advanceTimersByTimeAsync(1_000);
    expect(events.map(([e]) => e)).toEqual(['eject', 'readmit', 'eject']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(events.map(([e]) => e)).toEqual(['eject', 'readmit', 'eject', 'readmit']);
  });

  it('holds back a replica lagging past maxLagBytes, and lets it back when it catches up', async () => {
    const { db, r1 } = setup({ routing: { maxLagBytes: 1_000, balancer: 'round-robin' } });
    answerProbes(r1, { recovery: true, lsn: '0/2000000', receive: '0/3000000', age: 5_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(db.stats().endpoints[1]).toMatchObject({ health: 'lagging', lagBytes: 0x1000000 });
    r1.statements.length = 0;
    for (let i = 0; i < 4; i++) await db.read('SELECT 1');
    expect(r1.statements.filter((s) => s === 'SELECT 1')).toEqual([]);
    answerProbes(r1, { recovery: true, lsn: '0/3000000' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(db.stats().endpoints[1]?.health).toBe('healthy');
  });

  it('ejects a replica at once when its circuit opens', async () => {
    const { db, r1, events } = setup({
      breaker: { consecutiveFailures: 1 },
      retry: { retries: 1 },
    });
    r1.connectError = socketError('ECONNREFUSED');
    await db.read('SELECT 1');
    expect(events[0]).toEqual(['eject', { endpoint: 'replica-1', reason: 'circuit open' }]);
  });

  it('is off without replicas, or with health.enabled false', async () => {
    const primary = new FakePool('p');
    make({ primary });
    const r = new FakePool('r');
    make({ primary: new FakePool('p2'), replicas: [r], health: { enabled: false } });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(primary.statements).toEqual([]);
    expect(r.statements).toEqual([]);
  });
});
