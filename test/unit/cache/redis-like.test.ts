/**
 * The structural RedisLike must accept ioredis' own classes (checked by the type checker: this
 * file fails `tsc` if ioredis' signatures stop fitting), and nothing in src/cache may load
 * ioredis at run time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { RedisLike } from '../../../src/cache/redis-store.js';

describe('RedisLike', () => {
  it('is satisfied by ioredis Redis and Cluster', () => {
    expectTypeOf<Redis>().toExtend<RedisLike>();
    expectTypeOf<Cluster>().toExtend<RedisLike>();
    const asRedisLike = (client: Redis | Cluster): RedisLike => client;
    expect(typeof asRedisLike).toBe('function');
  });

  it('src/cache imports only types from ioredis', () => {
    const dir = new URL('../../../src/cache/', import.meta.url);
    for (const file of readdirSync(dir)) {
      const source = readFileSync(new URL(file, dir), 'utf8');
      for (const line of source.split('\n')) {
        if (/^\s*(\*|\/\/)/.test(line)) continue; // comments and JSDoc examples
        if (/from ['"]ioredis['"]/.test(line)) expect(line).toMatch(/^import type /);
        expect(line).not.toMatch(/(require|import)\(['"]ioredis['"]\)/);
      }
    }
  });
});
