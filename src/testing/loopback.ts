/**
 * Where the drill kit may send traffic: this machine only. A fault injector pointed at a shared
 * database by a typo in a URL would take that database down for everyone using it, so hosts are
 * checked up front and anything but loopback is refused.
 */
import net from 'node:net';

/** A TCP endpoint as `net.connect()` takes it. */
export interface HostPort {
  host: string;
  port: number;
}

let loopback: net.BlockList | undefined;

/**
 * True for `localhost`, 127.0.0.0/8 and ::1 (also written out in full, bracketed, or as an
 * IPv4-mapped 127.x address). `localhost` is trusted by name: resolving it elsewhere would take
 * a broken hosts file.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost') return true;
  const family = net.isIP(bare);
  if (family === 0) return false;
  if (loopback === undefined) {
    // Created on first use so that importing the module does no work.
    loopback = new net.BlockList();
    loopback.addSubnet('127.0.0.0', 8, 'ipv4');
    loopback.addAddress('::1', 'ipv6');
  }
  // BlockList matches IPv4-mapped IPv6 addresses against the IPv4 rule too.
  return loopback.check(bare, family === 6 ? 'ipv6' : 'ipv4');
}

function checkPort(port: unknown, what: string, allowZero: boolean): number {
  const low = allowZero ? 0 : 1;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < low || port > 65_535) {
    throw new RangeError(
      `${what}: port must be an integer from ${low} to 65535, got ${JSON.stringify(port)}`,
    );
  }
  return port;
}

/** Throws a TypeError naming `host` unless it is loopback. */
export function assertLoopback(host: string, what: string): void {
  if (!isLoopbackHost(host)) {
    throw new TypeError(
      `${what}: host "${host}" is not a loopback address; only 127.0.0.0/8, ::1 and localhost ` +
        'are allowed, so that injected faults never reach another machine',
    );
  }
}

/**
 * Parses `{ host, port }` or `'host:port'` (IPv6 in brackets: `'[::1]:5432'`) and checks that the
 * host is loopback. Brackets are stripped so the result can go straight to `net.connect()`.
 */
export function parseLoopbackTarget(target: HostPort | string, what: string): HostPort {
  let host: string;
  let port: unknown;
  if (typeof target === 'string') {
    const colon = target.lastIndexOf(':');
    if (colon <= 0) {
      throw new TypeError(`${what}: expected "host:port", got ${JSON.stringify(target)}`);
    }
    host = target.slice(0, colon);
    const portText = target.slice(colon + 1);
    port = /^\d+$/.test(portText) ? Number(portText) : portText;
    if (host.includes(':') && !/^\[.*\]$/.test(host)) {
      throw new TypeError(
        `${what}: an IPv6 host needs brackets, as in "[::1]:5432", got ${JSON.stringify(target)}`,
      );
    }
  } else if (typeof target === 'object' && target !== null) {
    host = target.host;
    port = target.port;
  } else {
    throw new TypeError(
      `${what}: expected { host, port } or "host:port", got ${JSON.stringify(target)}`,
    );
  }
  if (typeof host !== 'string' || host.trim() === '') {
    throw new TypeError(`${what}: host must be a non-empty string, got ${JSON.stringify(host)}`);
  }
  assertLoopback(host, what);
  return {
    host: host.trim().replace(/^\[(.*)\]$/, '$1'),
    port: checkPort(port, what, false),
  };
}

/** Checks a listen address: loopback host, port 0 (any) to 65535. */
export function checkListen(host: string, port: number, what: string): HostPort {
  if (typeof host !== 'string' || host.trim() === '') {
    throw new TypeError(`${what}: host must be a non-empty string, got ${JSON.stringify(host)}`);
  }
  assertLoopback(host, what);
  return { host: host.trim().replace(/^\[(.*)\]$/, '$1'), port: checkPort(port, what, true) };
}
