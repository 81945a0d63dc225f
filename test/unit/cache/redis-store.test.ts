import { describe, expect, it } from 'vitest';
import { clientAdvice, RedisStore, UnexpectedReplyError } from '../../../src/cache/redis-store.js';

/** A fake ioredis client: records commands, answers from a script. */
function fakeClient(replies: Record<string, unknown> = {}, options?: Record<string, unknown>) {
  const sent: unknown[][] = [];
  const answer = (name: string, args: unknown[]) => {
    sent.push([name, ...args]);
    return Promise.resolve(replies[name]);
  };
  return {
    sent,
    client: {
      options,
      get: (...a: unknown[]) => answer('get', a),
      mget: (...a: unknown[]) => answer('mget', a),
      set: (...a: unknown[]) => answer('set', a),
      del: (...a: unknown[]) => answer('del', a),
      eval: (...a: unknown[]) => answer('eval', a),
    } as never,
  };
}

describe('RedisStore', () => {
  it('sends single-key commands with PX and NX as ioredis expects', async () => {
    const { client, sent } = fakeClient({
      set: 'OK',
      get: 'v',
      mget: ['1', null],
      eval: 1,
      del: 1,
    });
    const store = new RedisStore(client);
    expect(await store.get('k')).toBe('v');
    expect(await store.mget(['a', 'b'])).toEqual(['1', null]);
    expect(await store.set('k', 'v', { px: 100 })).toBe(true);
    expect(await store.set('k', 'v', { nx: true })).toBe(true);
    expect(await store.lock('k:lock', 'tok', 5_000)).toBe(true);
    expect(await store.unlock('k:lock', 'tok')).toBe(true);
    expect(await store.incr('t', 7)).toBe(1);
    expect(await store.del('k')).toBe(true);
    expect(
      sent.map((c) => c.filter((x) => typeof x !== 'string' || !x.includes('redis.call'))),
    ).toEqual([
      ['get', 'k'],
      ['mget', ['a', 'b']],
      ['set', 'k', 'v', 'PX', 100],
      ['set', 'k', 'v', 'NX'],
      ['set', 'k:lock', 'tok', 'PX', 5_000, 'NX'],
      ['eval', 1, 'k:lock', 'tok'],
      ['eval', 1, 't', '7'],
      ['del', ['k']],
    ]);
  });

  it('reads a lost NX race as false', async () => {
    const { client } = fakeClient({ set: null });
    const store = new RedisStore(client);
    expect(await store.lock('k', 't', 1)).toBe(false);
    await expect(store.set('k', 'v', { px: 1 })).rejects.toBeInstanceOf(UnexpectedReplyError);
  });

  it('refuses replies of the wrong shape (a reply meant for another command)', async () => {
    await expect(new RedisStore(fakeClient({ get: ['x'] }).client).get('k')).rejects.toThrow(
      /GET answered with an array/,
    );
    await expect(
      new RedisStore(fakeClient({ mget: ['1'] }).client).mget(['a', 'b']),
    ).rejects.toThrow(UnexpectedReplyError);
    await expect(new RedisStore(fakeClient({ set: 'x' }).client).set('k', 'v', {})).rejects.toThrow(
      UnexpectedReplyError,
    );
    await expect(new RedisStore(fakeClient({ eval: 'x' }).client).incr('k', 0)).rejects.toThrow(
      UnexpectedReplyError,
    );
  });

  it('advises on the client options that matter for recovery', () => {
    expect(clientAdvice(fakeClient({}, undefined).client, 2_000)).toEqual([]);
    expect(clientAdvice(fakeClient({}, {}).client, 2_000)).toHaveLength(2);
    expect(
      clientAdvice(
        fakeClient({}, { socketTimeout: 1_000, enableOfflineQueue: false }).client,
        2_000,
      ),
    ).toEqual([]);
    expect(
      clientAdvice(
        fakeClient({}, { socketTimeout: 5_000, enableOfflineQueue: false }).client,
        2_000,
      )[0],
    ).toMatch(/below cache\.breaker\.resetTimeout/);
    // Cluster keeps the per-node options under redisOptions.
    expect(
      clientAdvice(
        fakeClient({}, { redisOptions: { socketTimeout: 1_000 }, enableOfflineQueue: false })
          .client,
        2_000,
      ),
    ).toEqual([]);
  });
});
