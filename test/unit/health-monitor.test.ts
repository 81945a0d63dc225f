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

  it('probes a lone primary too, and nothing with health.enabled false', async () => {
    const primary = new FakePool('p');
    answerProbes(primary, { recovery: false, lsn: '0/3000000' });
    make({ primary });
    const off = new FakePool('p2');
    const r = new FakePool('r');
    make({ primary: off, replicas: [r], health: { enabled: false } });
    await vi.advanceTimersByTimeAsync(2_500);
    expect(primary.statements.filter((t) => t.includes('pg_is_in_recovery'))).toHaveLength(2);
    expect(off.statements).toEqual([]);
    expect(r.statements).toEqual([]);
  });
});

describe('an endpoint whose probe does not answer is declared down', () => {
  const make = usePools();
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** A fake primary that stops answering anything while `frozen` is set (SIGSTOP). */
  function freezable() {
    const pool = new FakePool('p');
    const state = { frozen: false };
    const answer = pool.handler;
    answerProbes(pool, { recovery: false, lsn: '0/3000000' });
    const probes = pool.handler;
    pool.handler = (text, values, p) => {
      if (state.frozen) return new Promise(() => {});
      return text.includes('pg_is_in_recovery') ? probes(text, values, p) : answer(text, values, p);
    };
    return { pool, state };
  }

  it('ends calls in flight, refuses new ones at once, and is re-admitted by a passing probe', async () => {
    const { pool, state } = freezable();
    const db = make({ primary: pool, health: { intervalMs: 1_000, timeoutMs: 500 } });
    const events: string[] = [];
    db.on('down', (p) => events.push(`down ${p.endpoint}`));
    db.on('up', (p) => events.push(`up ${p.endpoint}`));
    state.frozen = true;
    const hung = db.write('UPDATE t SET x = 1').catch((err: unknown) => err);
    const read = db.read('SELECT 1').catch((err: unknown) => err);
    // Declared down within intervalMs + timeoutMs.
    await vi.advanceTimersByTimeAsync(1_500);
    expect(events).toEqual(['down primary']);
    // A statement that may have written: outcome unknown. A read on the primary too (not a standby).
    expect(await hung).toMatchObject({ code: 'E_OUTCOME_UNKNOWN', endpoint: 'primary' });
    expect(await read).toMatchObject({ code: 'E_OUTCOME_UNKNOWN' });
    await expect(db.write('SELECT 1')).rejects.toMatchObject({ code: 'E_ENDPOINT_DOWN' });
    expect(db.stats().endpoints[0]).toMatchObject({ breaker: 'open', inFlight: 0 });
    state.frozen = false;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(events).toEqual(['down primary', 'up primary']);
    await expect(db.write('SELECT 1')).resolves.toMatchObject({ rowCount: 1 });
  });

  it('refuses the calls queued behind the frozen ones too, even with breakers off', async () => {
    const { pool, state } = freezable();
    pool.options.max = 1;
    const db = make({
      primary: pool,
      breaker: { enabled: false },
      health: { intervalMs: 1_000, timeoutMs: 500 },
    });
    state.frozen = true;
    const running = db.write('UPDATE t SET x = 1').catch((err: unknown) => err);
    const queued = db.write('UPDATE t SET x = 2').catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(await running).toMatchObject({ code: 'E_OUTCOME_UNKNOWN' });
    // Nothing of it was sent: refused, not started on the frozen server by the freed permit.
    expect(await queued).toMatchObject({ code: 'E_ENDPOINT_DOWN' });
    expect(pool.statements.filter((t) => t.startsWith('UPDATE'))).toEqual(['UPDATE t SET x = 1']);
  });

  it('a probe answered with too many connections (53300) does not declare the endpoint down', async () => {
    const pool = new FakePool('p');
    pool.handler = (text) => {
      if (text.includes('pg_is_in_recovery')) {
        throw Object.assign(new Error('sorry, too many clients already'), {
          code: '53300',
          severity: 'FATAL',
        });
      }
      return { rows: [{ ok: 1 }], rowCount: 1 };
    };
    const db = make({ primary: pool, health: { intervalMs: 1_000, timeoutMs: 500 } });
    const downs: string[] = [];
    db.on('down', (p) => downs.push(p.endpoint));
    await vi.advanceTimersByTimeAsync(2_500);
    expect(downs).toEqual([]);
  });

  it('a read cut off on a down replica is re-run on another', async () => {
    const primary = new FakePool('p');
    answerProbes(primary, { recovery: false, lsn: '0/3000000' });
    const { pool: r1, state } = freezable();
    answerProbes(r1, { recovery: true, lsn: '0/3000000' });
    const answerR1 = r1.handler;
    r1.handler = (text, values, p) =>
      state.frozen ? new Promise(() => {}) : answerR1(text, values, p);
    const db = make({
      primary,
      replicas: [r1],
      health: { intervalMs: 1_000, timeoutMs: 500 },
    });
    await vi.advanceTimersByTimeAsync(1_000); // first probes: r1 is known to be a standby
    state.frozen = true;
    const read = db.read('SELECT 1');
    await vi.advanceTimersByTimeAsync(1_500);
    await expect(read).resolves.toMatchObject({ rows: [{ ok: 1 }] });
    expect(primary.statements).toContain('SELECT 1');
    expect(db.stats().endpoints[1]).toMatchObject({ name: 'replica-1', down: true });
  });

  it('is not declared down while other calls on it are answered (only the probe was slow)', async () => {
    const pool = new FakePool('p');
    answerProbes(pool, { recovery: false, lsn: '0/3000000' });
    const answer = pool.handler;
    pool.handler = (text, values, p) =>
      text.includes('pg_is_in_recovery') ? new Promise(() => {}) : answer(text, values, p);
    const db = make({ primary: pool, health: { intervalMs: 1_000, timeoutMs: 500 } });
    const downs: string[] = [];
    db.on('down', (p) => downs.push(p.endpoint));
    await vi.advanceTimersByTimeAsync(1_100);
    await db.write('SELECT 1');
    await vi.advanceTimersByTimeAsync(500);
    expect(downs).toEqual([]);
  });
});

describe('slow calls count against the circuit while still in flight', () => {
  const make = usePools();
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('opens the circuit on statements that never answer', async () => {
    const pool = new FakePool('p');
    pool.handler = () => new Promise(() => {});
    const db = make({
      primary: pool,
      health: { enabled: false },
      breaker: { slowCallMs: 1_000, consecutiveFailures: 3 },
    });
    for (let i = 0; i < 3; i++) void db.write('SELECT pg_sleep(100)').catch(() => {});
    await vi.advanceTimersByTimeAsync(900);
    expect(db.stats().endpoints[0]?.breaker).toBe('closed');
    await vi.advanceTimersByTimeAsync(700);
    expect(db.stats().endpoints[0]).toMatchObject({ breaker: 'open', slowCalls: 3 });
    await expect(db.write('SELECT 1')).rejects.toMatchObject({ code: 'E_CIRCUIT_OPEN' });
  });
});
