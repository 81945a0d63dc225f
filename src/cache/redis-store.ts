/**
 * CacheStore over an ioredis client the application owns: a single `Redis`, a `Cluster`, or a
 * Sentinel-managed `Redis`. Only the structural {@link RedisLike} is needed, so ioredis is never
 * loaded by this library (the user passes their instance) and any compatible client works.
 *
 * Cluster rules are respected by construction: every command touches one key, except MGET of tag
 * versions, whose keys all carry the `{tags}` hash tag and so live in one slot. The two scripts
 * touch only the key they are given.
 *
 * The store does not time out or retry: the cache's StoreGuard races every call against its own
 * short timer, so ioredis' `commandTimeout` is not needed (see docs/cache.md for the client
 * options that matter).
 */
import type { CacheStore } from './store.js';

/**
 * What the cache needs from an ioredis client (`Redis` or `Cluster` from ioredis 5 or 6). Only
 * these methods are called, with these shapes.
 */
export interface RedisLike {
  get(key: string): Promise<string | null>;
  mget(keys: string[]): Promise<Array<string | null>>;
  set(key: string, value: string, millisecondsToken: 'PX', milliseconds: number): Promise<unknown>;
  set(
    key: string,
    value: string,
    millisecondsToken: 'PX',
    milliseconds: number,
    nx: 'NX',
  ): Promise<unknown>;
  set(key: string, value: string, nx: 'NX'): Promise<unknown>;
  set(key: string, value: string): Promise<unknown>;
  del(keys: string[]): Promise<number>;
  eval(script: string, numkeys: number, ...args: Array<string | number>): Promise<unknown>;
}

/** Deletes the lock only if our token still holds it: a slow filler never frees another's lock. */
const UNLOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`;

/**
 * INCR that never lands below a floor. A tag counter that was evicted (or flushed) would restart
 * at 1 and could meet a version some live entry was written under; raising it to the floor
 * (derived from the clock, see keys.ts) keeps versions unique.
 */
const INCR_AT_LEAST = `local v = redis.call('incr', KEYS[1])
if v < tonumber(ARGV[1]) then
  redis.call('set', KEYS[1], ARGV[1])
  return ARGV[1]
end
return v`;

/** A reply that is not what the command returns: a sign of a desynchronised connection. */
export class UnexpectedReplyError extends Error {
  override readonly name = 'UnexpectedReplyError';
}

function unexpected(command: string, reply: unknown): never {
  const shape = Array.isArray(reply) ? 'an array' : reply === null ? 'null' : typeof reply;
  throw new UnexpectedReplyError(`${command} answered with ${shape}`);
}

export class RedisStore implements CacheStore {
  constructor(readonly client: RedisLike) {}

  get(key: string): Promise<string | null> {
    return this.client.get(key).then((reply) => {
      if (reply === null || typeof reply === 'string') return reply;
      return unexpected('GET', reply);
    });
  }

  mget(keys: readonly string[]): Promise<Array<string | null>> {
    return this.client.mget(keys as string[]).then((reply) => {
      if (
        Array.isArray(reply) &&
        reply.length === keys.length &&
        reply.every((v) => v === null || typeof v === 'string')
      ) {
        return reply;
      }
      return unexpected('MGET', reply);
    });
  }

  set(key: string, value: string, options: { px?: number; nx?: boolean }): Promise<boolean> {
    const { px, nx } = options;
    const reply =
      px === undefined
        ? nx
          ? this.client.set(key, value, 'NX')
          : this.client.set(key, value)
        : nx
          ? this.client.set(key, value, 'PX', px, 'NX')
          : this.client.set(key, value, 'PX', px);
    return reply.then((r) => okOrNull('SET', r, nx === true));
  }

  del(key: string): Promise<boolean> {
    return this.client
      .del([key])
      .then((n) => (typeof n === 'number' ? n > 0 : unexpected('DEL', n)));
  }

  incr(key: string, atLeast: number): Promise<number> {
    return this.client.eval(INCR_AT_LEAST, 1, key, String(atLeast)).then((reply) => {
      const n = typeof reply === 'string' ? Number(reply) : reply;
      return typeof n === 'number' && Number.isSafeInteger(n) ? n : unexpected('EVAL incr', reply);
    });
  }

  lock(key: string, token: string, ttl: number): Promise<boolean> {
    return this.client
      .set(key, token, 'PX', ttl, 'NX')
      .then((reply) => okOrNull('SET NX', reply, true));
  }

  unlock(key: string, token: string): Promise<boolean> {
    return this.client.eval(UNLOCK, 1, key, token).then((reply) => {
      if (typeof reply === 'number') return reply > 0;
      return unexpected('EVAL unlock', reply);
    });
  }
}

function okOrNull(command: string, reply: unknown, nullAllowed: boolean): boolean {
  if (reply === 'OK') return true;
  if (reply === null && nullAllowed) return false;
  return unexpected(command, reply);
}

/**
 * ioredis options worth a warning. Without `socketTimeout`, a connection that stops answering
 * (a black hole, a dead NAT entry) is never replaced; and a command the cache's timer gave up on
 * keeps its place in the client's reply queue, so if its bytes were lost for good every later
 * reply would go to the command before it, until the socket is replaced (the codec's key check
 * keeps such replies from being served). Read from the client's own `options`, which ioredis
 * exposes on both `Redis` and `Cluster` (`redisOptions` there).
 */
export function clientAdvice(client: RedisLike, resetTimeout: number): string[] {
  const options = (client as { options?: Record<string, unknown> }).options;
  if (typeof options !== 'object' || options === null) return [];
  const nested = options.redisOptions as Record<string, unknown> | undefined;
  const socketTimeout = options.socketTimeout ?? nested?.socketTimeout;
  const advice: string[] = [];
  if (typeof socketTimeout !== 'number' || socketTimeout <= 0) {
    advice.push(
      'set socketTimeout (for example 1000) on the ioredis client: without it a connection that stops answering is never replaced and the cache stays bypassed',
    );
  } else if (socketTimeout >= resetTimeout) {
    advice.push(
      `set the ioredis client's socketTimeout (${socketTimeout}) below cache.breaker.resetTimeout (${resetTimeout}): a connection that lost replies is replaced only when no reply arrives for socketTimeout, and the breaker's probes would keep it from happening`,
    );
  }
  if (options.enableOfflineQueue !== false) {
    advice.push(
      'set enableOfflineQueue: false on the ioredis client: while it is disconnected, queued cache commands would pile up and run late',
    );
  }
  return advice;
}
