import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakePool } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

describe('end() out of time', () => {
  const make = usePools();
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('ends the statements still running and refuses the queued ones, which never start', async () => {
    const pool = new FakePool('p', 1);
    pool.handler = () => new Promise(() => {});
    const db = make({ primary: pool, health: { enabled: false } });
    const running = db.write('UPDATE t SET x = 1').catch((err: unknown) => err);
    const queued = db.write('UPDATE t SET x = 2').catch((err: unknown) => err);
    const ended = db.end({ timeout: 100 });
    await vi.advanceTimersByTimeAsync(1_200);
    await ended;
    expect(await running).toMatchObject({ code: 'E_OUTCOME_UNKNOWN' });
    expect(await queued).toMatchObject({ code: 'E_POOL_CLOSED' });
    expect(pool.statements).toEqual(['UPDATE t SET x = 1']);
  });
});
