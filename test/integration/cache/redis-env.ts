/**
 * The real Redis for the cache's integration tests: REDIS_URL (default redis://127.0.0.1:6379).
 * Probed once when a test file is collected. When none answers the tests are skipped with a
 * message naming REDIS_URL, unless REQUIRE_REDIS=1 (CI), in which case they fail.
 *
 * Every file gets its own random key prefix, and its keys are deleted afterwards.
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, describe, it } from 'vitest';

export const REDIS_URL = process.env.REDIS_URL?.trim() || 'redis://127.0.0.1:6379';
const REQUIRED = process.env.REQUIRE_REDIS === '1';

/**
 * The client options the library recommends (docs/cache.md): fail fast while disconnected, give
 * up a silent connection after `socketTimeout`, and let the cache's own timer bound each call.
 */
export const RECOMMENDED: RedisOptions = {
  lazyConnect: true,
  maxRetriesPerRequest: 1,
  enableOfflineQueue: false,
  socketTimeout: 1_000,
  connectTimeout: 1_000,
};

async function probe(): Promise<string | undefined> {
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const pong = await client.ping();
    return pong === 'PONG' ? undefined : `unexpected PING reply ${pong}`;
  } catch (err) {
    return (err as Error).message;
  } finally {
    client.disconnect();
  }
}

const problem = await probe();
export const redisAvailable = problem === undefined;
const SKIP = `no Redis answered at REDIS_URL=${REDIS_URL} (${problem}); start one or point REDIS_URL at one`;

/**
 * `describe` for tests that need Redis: skipped with a message naming REDIS_URL when none
 * answers, or failing when REQUIRE_REDIS=1.
 */
export function describeWithRedis(name: string, body: () => void): void {
  if (redisAvailable) {
    describe(name, body);
  } else if (REQUIRED) {
    describe(name, () => {
      it('needs Redis (REQUIRE_REDIS=1)', () => {
        throw new Error(`REQUIRE_REDIS=1 but ${SKIP}`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${SKIP})`, body);
  }
}

/** A fresh key prefix for one test file, so runs never see each other's keys. */
export function testPrefix(): string {
  return `rp-test-${randomUUID().slice(0, 8)}:`;
}

/** Clients opened by a file; closed (and the file's keys deleted) after its tests. */
export function useRedisClients(prefix: string) {
  const clients: Redis[] = [];
  afterAll(async () => {
    if (!redisAvailable) return;
    const admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await admin.del(keys);
      } while (cursor !== '0');
    } finally {
      admin.disconnect();
      for (const c of clients.splice(0)) c.disconnect();
    }
  });
  return {
    /** A connected client at REDIS_URL (or at `port` on loopback), with the recommended options. */
    async open(overrides: RedisOptions = {}, port?: number): Promise<Redis> {
      const url = new URL(REDIS_URL);
      const client =
        port === undefined
          ? new Redis(REDIS_URL, { ...RECOMMENDED, ...overrides })
          : new Redis({
              ...RECOMMENDED,
              host: '127.0.0.1',
              port,
              password: url.password === '' ? undefined : decodeURIComponent(url.password),
              username: url.username === '' ? undefined : decodeURIComponent(url.username),
              db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
              ...overrides,
            });
      // ioredis reports connection trouble as 'error' events; the tests cause it on purpose.
      client.on('error', () => {});
      clients.push(client);
      await client.connect();
      return client;
    },
  };
}

/** REDIS_URL's host and port, when it is on this machine (ChaosProxy forwards to loopback only). */
export function loopbackRedisTarget(): { host: string; port: number } | undefined {
  const url = new URL(REDIS_URL);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
  return loopback ? { host, port: url.port === '' ? 6379 : Number(url.port) } : undefined;
}
