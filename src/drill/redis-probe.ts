/**
 * Whether a Redis answers at a URL: a TCP connection and a PING, within a short deadline. Any
 * reply counts (`+PONG`, or `-NOAUTH` from a server that wants the password the URL carries): a
 * port that accepts and says nothing, or says something that is not RESP, is not a Redis.
 */
import net from 'node:net';

/** The default address of the tests and the drill, when REDIS_URL is not set. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** REDIS_URL when set, else the default. */
export function redisUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.REDIS_URL?.trim() || DEFAULT_REDIS_URL;
}

/**
 * Resolves true once something at `url` answered a PING like Redis, false on no answer within
 * `timeoutMs`, a refused connection or a reply that is not Redis's. Never rejects.
 * @param timeoutMs @default 500
 */
export function redisAnswers(url: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      resolve(false);
      return;
    }
    const socket = net.connect({
      host: parsed.hostname.replace(/^\[|\]$/g, ''),
      port: parsed.port === '' ? 6379 : Number(parsed.port),
    });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    // RESP replies start with '+' (simple string) or '-' (error).
    socket.once('data', (chunk: Buffer) => done(chunk[0] === 0x2b || chunk[0] === 0x2d));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}
