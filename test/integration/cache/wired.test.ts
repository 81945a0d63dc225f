import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { cacheInfo } from '../../../src/cache/index.js';
import { ResilientPool } from '../../../src/index.js';
import { useCluster } from '../../support/cluster.js';
import { describeWithRedis, REDIS_URL } from './redis-env.js';

const handle = useCluster({ replicas: 1 });

describeWithRedis('the cache wired into ResilientPool', () => {
  it('reads through the cache, invalidates on write, reports stats and events', async () => {
    const redis = new Redis(REDIS_URL, {
      lazyConnect: true,
      enableOfflineQueue: false,
      socketTimeout: 1000,
      maxRetriesPerRequest: 1,
    });
    await redis.connect();
    const prefix = `rp-wired-${Date.now()}:`;
    const db = new ResilientPool({
      primary: handle.cluster.primary.createPool(),
      replicas: [handle.cluster.replicas[0]!.createPool()],
      cache: { redis, prefix, timeout: 1_000 },
      logger: false,
    });
    const events: unknown[] = [];
    db.on('cacheBreaker', (e) => events.push(e));
    await db.write('CREATE TABLE IF NOT EXISTS wired (id int primary key, name text)');
    await db.write('INSERT INTO wired VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET name = $1', [
      'Ann',
    ]);
    await handle.cluster.waitForReplication();
    const a = await db.read('SELECT * FROM wired WHERE id = $1', [1], {
      cache: { tags: ['wired'] },
    });
    expect(cacheInfo(a)?.hit).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    const b = await db.read('SELECT * FROM wired WHERE id = $1', [1], {
      cache: { tags: ['wired'] },
    });
    expect(cacheInfo(b)?.hit).toBe(true);
    expect(b.rows).toEqual(a.rows);
    await db.write('UPDATE wired SET name = $1 WHERE id = 1', ['Bob'], { invalidates: ['wired'] });
    await handle.cluster.waitForReplication();
    const c = await db.read('SELECT * FROM wired WHERE id = $1', [1], {
      cache: { tags: ['wired'] },
    });
    expect(cacheInfo(c)?.hit).toBe(false);
    expect(c.rows[0]?.name).toBe('Bob');
    expect(db.stats().cache).toMatchObject({
      hits: 1,
      misses: 2,
      invalidations: 1,
      breaker: 'closed',
    });
    await expect(db.read('SELECT 1', [], { cache: { ttl: 0 } })).rejects.toThrow(/cache.ttl/);
    await expect(db.read('SELECT 1', [], { cach: true } as never)).rejects.toThrow(
      /unknown option 'cach'/,
    );
    await db.cache?.invalidate(['wired']);
    await db.end();
    expect(redis.status).toBe('ready');
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(keys);
    redis.disconnect();
    expect(events).toEqual([]);
  });
});
