/**
 * A TCP proxy on loopback that puts network faults between a client and a server (PostgreSQL,
 * Redis, anything over TCP), switched at run time: latency, bandwidth limits, a black hole,
 * resets and refused connections. Unlike pausing or killing the server, it breaks the network
 * path only, which is what a client sees when a switch, a NAT table or a cloud load balancer
 * misbehaves.
 *
 * How faults combine:
 * - `refuse()` decides what happens to new connections: they are reset as soon as they are
 *   accepted, whatever else is on. Connections already open are not touched by it.
 * - `blackhole()` decides what happens to bytes: none are delivered, in either direction, on
 *   any connection, so latency and bandwidth limits have nothing to shape meanwhile.
 * - `latency()` and `limitBandwidth()` shape what gets through and add up: a chunk waits for its
 *   latency, then for its share of the bandwidth.
 * - `reset()` is an action, not a state: it aborts the connections open at the time of the call.
 */
import net from 'node:net';
import { ChaosConnection } from './chaos-connection.js';
import type { ChaosFaultState, LaneCounters } from './chaos-lane.js';
import { checkListen, type HostPort, parseLoopbackTarget } from './loopback.js';

/** Where a {@link ChaosProxy} forwards to and where it listens. */
export interface ChaosProxyOptions {
  /**
   * The server to put faults in front of: `{ host, port }` or `'host:port'` (IPv6 in brackets,
   * `'[::1]:5432'`). Must be on this machine (127.0.0.0/8, ::1 or localhost): anything else is
   * refused with a TypeError, so a drill can never disturb a shared server.
   */
  target: { host: string; port: number } | string;
  /** Where the proxy listens; loopback only, like the target. */
  listen?: {
    /** @default '127.0.0.1' */
    host?: string;
    /** `0` picks a free port; read it back from {@link ChaosProxy.port}. @default 0 */
    port?: number;
  };
}

/** A snapshot of what the proxy has done; see {@link ChaosProxy.stats}. */
export interface ChaosProxyStats {
  /** Connections accepted and proxied (refused ones not included). */
  connectionsAccepted: number;
  /** Proxied connections not yet fully closed, including ones held open by a black hole. */
  connectionsActive: number;
  /** Connections reset on arrival because `refuse()` was on. */
  connectionsRefused: number;
  /** Connections aborted by `reset()`. */
  connectionsReset: number;
  /** Bytes delivered to the target (after faults: swallowed bytes are not counted). */
  bytesToTarget: number;
  /** Bytes from the target delivered to clients (after faults). */
  bytesFromTarget: number;
  /**
   * Bytes not delivered, in both directions: swallowed by a black hole (including ones that were
   * held back by latency when it opened), or left over when the receiving side had closed.
   */
  bytesDropped: number;
  /**
   * Faults in force, in precedence order: `'refuse'`, `'blackhole'`, `'latency 200ms'` (or
   * `'latency 200ms ±50ms'`), `'bandwidth 100000B/s'`. Empty when healthy.
   */
  faults: string[];
}

const PROXY = 'ChaosProxy';

function nonNegative(value: number, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${PROXY}.${what} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

/**
 * A fault-injecting TCP proxy for drills and integration tests. Start it in front of a server,
 * point the client at {@link ChaosProxy.port}, then switch faults on and off while the client
 * runs. Fault methods return the proxy, so they chain.
 *
 * {@link ChaosProxy.heal} removes every fault. Bytes swallowed by a black hole are gone (not
 * replayed); connections that were black-holed stay open and carry new bytes again, and an end
 * of stream held back by the black hole is delivered then. Bytes held back by latency or a
 * bandwidth limit are delivered at once, in order.
 *
 * @example
 * const proxy = await ChaosProxy.start({ target: cluster.primary });
 * const pool = new pg.Pool({ host: proxy.host, port: proxy.port, user, password, database });
 * proxy.latency(200, 50).limitBandwidth(100_000);
 * proxy.blackhole();   // queries hang; use query_timeout / connectionTimeoutMillis
 * proxy.heal();
 * proxy.reset();       // open connections get ECONNRESET; new ones work
 * await proxy.close();
 */
export class ChaosProxy {
  readonly #server: net.Server;
  #target: HostPort;
  readonly #connections = new Set<ChaosConnection>();
  readonly #faults: ChaosFaultState = {
    refuse: false,
    blackhole: false,
    latencyMs: 0,
    jitterMs: 0,
    bytesPerSec: Number.POSITIVE_INFINITY,
  };
  readonly #counts = {
    accepted: 0,
    refused: 0,
    reset: 0,
    toTarget: 0,
    fromTarget: 0,
    dropped: 0,
  };
  readonly #laneCounters: { toTarget: LaneCounters; fromTarget: LaneCounters };
  #host = '';
  #port = 0;
  #closing: Promise<void> | undefined;

  private constructor(server: net.Server, target: HostPort) {
    this.#server = server;
    this.#target = target;
    const counts = this.#counts;
    const dropped = (bytes: number) => {
      counts.dropped += bytes;
    };
    this.#laneCounters = {
      toTarget: {
        forwarded: (bytes: number) => {
          counts.toTarget += bytes;
        },
        dropped,
      },
      fromTarget: {
        forwarded: (bytes: number) => {
          counts.fromTarget += bytes;
        },
        dropped,
      },
    };
  }

  /**
   * Starts listening and resolves once the port is bound. Rejects with a TypeError when the
   * target or listen host is not loopback, and with the listen error (EADDRINUSE, ...) otherwise.
   *
   * @example
   * const proxy = await ChaosProxy.start({ target: '127.0.0.1:5432' });
   * const url = `postgres://postgres@${proxy.address}/postgres`;
   */
  static async start(options: ChaosProxyOptions): Promise<ChaosProxy> {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`${PROXY}.start: expected { target, listen? }`);
    }
    const target = parseLoopbackTarget(options.target, `${PROXY} target`);
    const listen = checkListen(
      options.listen?.host ?? '127.0.0.1',
      options.listen?.port ?? 0,
      `${PROXY} listen`,
    );
    // allowHalfOpen: a client's FIN is passed on by its lane after the bytes before it, rather
    // than closing the reply direction early.
    const server = net.createServer({ allowHalfOpen: true });
    const proxy = new ChaosProxy(server, target);
    server.on('connection', (socket) => proxy.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Accept errors (EMFILE, ...) after start fail one connection attempt, which the client sees;
    // they must not end the process that runs the drill.
    server.on('error', () => {});
    const address = server.address() as net.AddressInfo;
    proxy.#host = address.address;
    proxy.#port = address.port;
    return proxy;
  }

  /** The address the proxy listens on, e.g. `127.0.0.1`. */
  get host(): string {
    return this.#host;
  }

  /** The port the proxy listens on (the one picked when `listen.port` was 0). */
  get port(): number {
    return this.#port;
  }

  /** `host:port` to connect to, e.g. `127.0.0.1:54321` (`[::1]:54321` for IPv6). */
  get address(): string {
    return net.isIPv6(this.#host) ? `[${this.#host}]:${this.#port}` : `${this.#host}:${this.#port}`;
  }

  /** The server the proxy forwards to. */
  get target(): { readonly host: string; readonly port: number } {
    return { ...this.#target };
  }

  /**
   * Points new connections at another server (same loopback rule and forms as `target`), as a
   * DNS name or a virtual IP does after a fail-over. Open connections keep their server; call
   * `reset()` as well to drop them, as a fail-over does.
   * @example
   * proxy.retarget({ host: promoted.host, port: promoted.port });
   * proxy.reset();
   */
  retarget(target: { host: string; port: number } | string): this {
    this.#target = parseLoopbackTarget(target, `${PROXY}.retarget`);
    return this;
  }

  /**
   * Delays every chunk by `ms`, plus or minus up to `jitterMs` (uniform), in both directions.
   * Chunk order is kept per direction: a chunk never overtakes an earlier one, so jitter can only
   * stretch gaps. Applies to bytes arriving from now on; `latency(0)` switches it off.
   * @param jitterMs @default 0
   */
  latency(ms: number, jitterMs = 0): this {
    // Both checked before either is set, so a bad call leaves the faults as they were.
    const latencyMs = nonNegative(ms, 'latency(ms)');
    this.#faults.jitterMs = nonNegative(jitterMs, 'latency(ms, jitterMs)');
    this.#faults.latencyMs = latencyMs;
    return this;
  }

  /**
   * Limits each direction of each connection to `bytesPerSec`; `Infinity` lifts the limit.
   * Combines with latency: a chunk waits its latency, then its turn in the bandwidth budget.
   */
  limitBandwidth(bytesPerSec: number): this {
    if (
      typeof bytesPerSec !== 'number' ||
      Number.isNaN(bytesPerSec) ||
      bytesPerSec <= 0 ||
      (!Number.isFinite(bytesPerSec) && bytesPerSec !== Number.POSITIVE_INFINITY)
    ) {
      throw new RangeError(
        `${PROXY}.limitBandwidth(bytesPerSec) must be a number > 0 (Infinity: no limit), got ${String(bytesPerSec)}`,
      );
    }
    this.#faults.bytesPerSec = bytesPerSec;
    return this;
  }

  /**
   * Swallows every byte in both directions, on open and new connections alike: new connections
   * are still accepted, nothing is ever answered and nothing is closed, like a network partition
   * or a firewall that drops packets. Clients notice only through their own timeouts.
   * Bytes held back by latency at this moment are dropped too. Ends of stream (FIN, RST) are held
   * until heal(); `reset()` and `close()` still abort connections.
   */
  blackhole(): this {
    this.#faults.blackhole = true;
    for (const connection of this.#connections) connection.dropQueued();
    return this;
  }

  /**
   * Resets new connections as soon as they are accepted (the client sees ECONNRESET, or pg's
   * "Connection terminated unexpectedly"), like a server that is down or out of slots. Open
   * connections keep working. Wins over every other fault for new connections.
   */
  refuse(): this {
    this.#faults.refuse = true;
    return this;
  }

  /**
   * Aborts every open connection with an RST on both sides: the client gets ECONNRESET, the
   * server sees the connection drop. A one-off action, not a fault that stays on: connections
   * opened afterwards work unless another fault says otherwise.
   * @returns how many connections were reset
   */
  reset(): number {
    const open = [...this.#connections];
    for (const connection of open) connection.reset();
    this.#counts.reset += open.length;
    return open.length;
  }

  /**
   * Removes every fault. Bytes a black hole swallowed are not replayed; connections that were
   * black-holed stay open and carry new bytes again, and an end of stream held back by the black
   * hole is delivered now. Bytes held back by latency or bandwidth are delivered at once, in
   * order.
   */
  heal(): this {
    const faults = this.#faults;
    faults.refuse = false;
    faults.blackhole = false;
    faults.latencyMs = 0;
    faults.jitterMs = 0;
    faults.bytesPerSec = Number.POSITIVE_INFINITY;
    for (const connection of [...this.#connections]) connection.flushAll();
    return this;
  }

  /** Counters since start and the faults in force. */
  stats(): ChaosProxyStats {
    const counts = this.#counts;
    const faults = this.#faults;
    const active: string[] = [];
    if (faults.refuse) active.push('refuse');
    if (faults.blackhole) active.push('blackhole');
    if (faults.latencyMs > 0 || faults.jitterMs > 0) {
      active.push(
        faults.jitterMs > 0
          ? `latency ${faults.latencyMs}ms ±${faults.jitterMs}ms`
          : `latency ${faults.latencyMs}ms`,
      );
    }
    if (Number.isFinite(faults.bytesPerSec)) active.push(`bandwidth ${faults.bytesPerSec}B/s`);
    return {
      connectionsAccepted: counts.accepted,
      connectionsActive: this.#connections.size,
      connectionsRefused: counts.refused,
      connectionsReset: counts.reset,
      bytesToTarget: counts.toTarget,
      bytesFromTarget: counts.fromTarget,
      bytesDropped: counts.dropped,
      faults: active,
    };
  }

  /**
   * Stops listening and destroys every connection; resolves once the listening socket is closed.
   * Afterwards no timer or socket of the proxy is left to keep the process alive. Calling it
   * again returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      // server.close() waits for accepted sockets to close, so they are destroyed right after.
      this.#server.close(() => resolve());
      for (const connection of this.#connections) connection.destroy();
      this.#connections.clear();
    });
    return this.#closing;
  }

  #accept(socket: net.Socket): void {
    if (this.#closing !== undefined || this.#faults.refuse) {
      // 'error' can still fire on a socket being torn down; nobody else listens to it.
      socket.on('error', () => {});
      if (this.#closing === undefined) this.#counts.refused++;
      // An RST rather than a FIN: the nearest a listening socket gets to a refused connection.
      socket.resetAndDestroy();
      return;
    }
    this.#counts.accepted++;
    const connection = new ChaosConnection(
      socket,
      this.#target,
      this.#faults,
      this.#laneCounters,
      (closed) => this.#connections.delete(closed),
    );
    this.#connections.add(connection);
  }
}
