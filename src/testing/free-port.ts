import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * Picks a free TCP port on 127.0.0.1 for a server that will be stopped and started again on the
 * same port.
 *
 * Port 0 would hand out a port from the ephemeral range, the same range the kernel uses for the
 * local end of outgoing connections. While a node is down after `kill()`, any client connection
 * (a pool reconnecting to another node, say) may take that port as its local port, and the
 * restart then fails with "Address already in use". So ports are drawn at random from below the
 * ephemeral range and checked by binding; port 0 remains the fallback.
 */

const LOWEST = 10_000;
const ATTEMPTS = 50;

/** The kernel's ephemeral range; the Linux default where it cannot be read. */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (low !== undefined && high !== undefined && low > 0 && high >= low) return { low, high };
  } catch {
    // not Linux
  }
  // macOS and the BSDs use 49152-65535, so the range below suits them too.
  return { low: 32_768, high: 60_999 };
}

/** Binds `port` (0: any) and closes again; resolves the bound port, or undefined when taken. */
function tryBind(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}

/** A port nobody listens on right now. Another process may still take it before we bind it. */
export async function freePort(): Promise<number> {
  const { low } = ephemeralRange();
  const span = low - LOWEST;
  if (span >= 1_000) {
    for (let i = 0; i < ATTEMPTS; i++) {
      const port = await tryBind(LOWEST + Math.floor(Math.random() * span));
      if (port !== undefined) return port;
    }
  }
  const port = await tryBind(0);
  if (port === undefined) throw new Error('startLocalCluster: could not find a free TCP port');
  return port;
}
