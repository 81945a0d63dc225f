/**
 * The command's Redis default: something counts as a Redis only when it answers a PING the way
 * Redis does, within the deadline. Checked against small TCP servers on loopback.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_REDIS_URL, redisAnswers, redisUrlFromEnv } from '../../src/drill/redis-probe.js';

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();

/** A server that answers its first chunk with `reply` (or never, when undefined). */
async function serve(reply: string | undefined): Promise<string> {
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => {
      if (reply !== undefined) socket.write(reply);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers.splice(0)) {
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('redisAnswers', () => {
  it('is true for +PONG, and for an error reply (a Redis that wants a password)', async () => {
    expect(await redisAnswers(await serve('+PONG\r\n'))).toBe(true);
    expect(await redisAnswers(await serve('-NOAUTH Authentication required.\r\n'))).toBe(true);
  });

  it('is false for silence, a reply that is not Redis, a refused port or a bad URL', async () => {
    expect(await redisAnswers(await serve(undefined), 200)).toBe(false);
    expect(await redisAnswers(await serve('HTTP/1.1 400 Bad Request\r\n'))).toBe(false);
    const closed = await serve(undefined);
    await new Promise((resolve) => servers.pop()!.close(resolve));
    expect(await redisAnswers(closed)).toBe(false);
    expect(await redisAnswers('not a url')).toBe(false);
  });
});

describe('redisUrlFromEnv', () => {
  it('takes REDIS_URL when set, else the tests’ default address', () => {
    expect(redisUrlFromEnv({ REDIS_URL: ' redis://127.0.0.1:6390 ' })).toBe(
      'redis://127.0.0.1:6390',
    );
    expect(redisUrlFromEnv({ REDIS_URL: '' })).toBe(DEFAULT_REDIS_URL);
    expect(redisUrlFromEnv({})).toBe('redis://127.0.0.1:6379');
  });
});
