/**
 * A TCP proxy on loopback that reads enough of the PostgreSQL v3 wire protocol to know what stage
 * each connection is at, so a test can cut one connection at an exact point of a call: while it
 * authenticates, just after the statement went out, in the middle of the rows, just after the
 * reply, or during COMMIT.
 *
 * Unlike ChaosProxy (src/testing), which breaks the network path at a moment chosen by the clock,
 * this proxy breaks it at a moment chosen by the protocol, which is what a fault-point test needs:
 * the same cut at the same stage on every run, aimed at one statement and not at a health probe,
 * a ROLLBACK or the pool's own housekeeping.
 *
 * What a cut does:
 * - the client's end, once what was already forwarded to it has been written and
 *   CLIENT_GRACE_MS has passed, is reset (RST; pg reports ECONNRESET) or, with `close: 'fin'`,
 *   closed (FIN; pg reports 'Connection terminated unexpectedly', an Error without a code). The
 *   client reads every byte it was given first, as when a route drops or a middlebox gives up;
 * - the server's socket is ended (FIN) after what was already forwarded to it, and whatever the
 *   server sends after that is dropped. A statement that was forwarded therefore reaches the
 *   server whole and runs (and, outside a transaction, commits) although the client never hears
 *   of it: the worst case for a client that might send it again.
 *
 * Not parsed (passed through untouched): TLS after an accepted SSLRequest, GSS encryption, cancel
 * requests, and extended-protocol executions of a named statement prepared earlier (their Bind
 * carries no text to match).
 */
import net from 'node:net';
import { checkListen, parseLoopbackTarget } from '../../src/testing/loopback.js';

/** Where in a connection's life a cut happens. */
export type CutStage =
  /** After the startup packet was forwarded: the server's first reply is dropped, then the cut. */
  | 'during-connect'
  /** Right after the matched statement was forwarded ('Q', or 'P' ... up to its 'S' Sync). */
  | 'after-send'
  /** Right after the first DataRow ('D') of the matched statement's result was forwarded. */
  | 'mid-result'
  /**
   * Right after the ReadyForQuery ('Z') that ends the matched statement was forwarded: the client
   * has its whole result and the connection dies about when it goes back to the pool.
   */
  | 'after-result'
  /** Right after a COMMIT (or END) was forwarded. */
  | 'during-commit';

/** How the client's end of a cut connection ends. */
export type CutClose = 'reset' | 'fin';

export interface ArmOptions {
  /**
   * Only a statement whose text contains this string is cut. For 'during-commit' only the COMMIT
   * of a connection that earlier sent such a statement is cut, so the cut hits the transaction
   * under test. Ignored by 'during-connect', which cuts the next connection to start up.
   * @default undefined (any statement; any COMMIT)
   */
  match?: string;
  /**
   * 'reset': the client gets an RST (a dropped route, a killed middlebox). 'fin': it gets an
   * orderly close in the middle of the protocol (a proxy or load balancer closing on its side).
   * @default 'reset'
   */
  close?: CutClose;
}

/** One cut that happened. */
export interface CutReport {
  stage: CutStage;
  close: CutClose;
  /** The proxied connection's number, from 1 in order of arrival. */
  connection: number;
  /** The statement cut (for 'during-connect': undefined). */
  statement: string | undefined;
  /**
   * Resolves once the server's end of the cut connection has closed: the backend has finished
   * what it was sent (a statement, a COMMIT) and exited, so its effects are final and visible.
   */
  serverClosed: Promise<void>;
}

export interface StageProxyOptions {
  /** The PostgreSQL server to forward to; loopback only (127.0.0.0/8, ::1, localhost). */
  target: { host: string; port: number } | string;
  /** Where to listen; loopback only. @default { host: '127.0.0.1', port: 0 } */
  listen?: { host?: string; port?: number };
}

/** What the proxy is armed for. */
export interface Arming {
  stage: CutStage;
  match: string | undefined;
  close: CutClose;
}

/**
 * Wait between the last forwarded byte being written and the client's end being cut. A reset
 * discards whatever the kernel has not transmitted yet, and Linux may hold a small segment back
 * for a moment (TCP autocorking), so without a pause the client would sometimes lose the
 * ReadyForQuery it was given and an 'after-result' cut would turn into a 'mid-result' one.
 */
const CLIENT_GRACE_MS = 10;

// Codes of the untyped first packets (protocol.sgml, "Message Formats").
const SSL_REQUEST = 80_877_103;
const GSSENC_REQUEST = 80_877_104;
const CANCEL_REQUEST = 80_877_102;

/** A whole message found in a buffer: `type` is undefined for the untyped startup packets. */
interface Frame {
  type: string | undefined;
  /** Offset just past the frame. */
  end: number;
  /** The frame's payload (after type and length). */
  body: Buffer;
}

/** The next whole frame at `offset`, undefined if incomplete, null if the bytes make no sense. */
function nextFrame(buf: Buffer, offset: number, typed: boolean): Frame | undefined | null {
  const header = typed ? 5 : 4;
  if (buf.length - offset < header) return undefined;
  const length = buf.readInt32BE(offset + (typed ? 1 : 0));
  if (length < 4) return null;
  const end = offset + (typed ? 1 : 0) + length;
  if (end > buf.length) return undefined;
  return {
    type: typed ? String.fromCharCode(buf[offset]!) : undefined,
    end,
    body: buf.subarray(offset + header, end),
  };
}

/** A NUL-terminated string at `offset` of `body`. */
function cstring(body: Buffer, offset = 0): string {
  const nul = body.indexOf(0, offset);
  return body.toString('utf8', offset, nul === -1 ? body.length : nul);
}

/** The query text of a Parse message: after the statement name. */
function parseText(body: Buffer): string {
  const nameEnd = body.indexOf(0);
  return nameEnd === -1 ? '' : cstring(body, nameEnd + 1);
}

function isCommit(text: string): boolean {
  return /^\s*(COMMIT|END)\s*(WORK|TRANSACTION)?\s*;?\s*$/i.test(text);
}

/** A cut decided while looking at a message, made once the message has been forwarded. */
interface PendingCut {
  arming: Arming;
  statement: string | undefined;
}

/**
 * Where a connection is: 'startup' waits for the untyped startup packet, 'negotiating' for the
 * server's one-byte answer to an SSL/GSS request, 'auth' for the first ReadyForQuery, 'ready'
 * carries statements; 'opaque' is passed through uninterpreted, 'cut' is dead.
 */
type Phase = 'startup' | 'negotiating' | 'auth' | 'ready' | 'opaque' | 'cut';

/** One proxied connection and its protocol state. */
class StageConnection {
  private phase: Phase = 'startup';
  private clientBuf: Buffer = Buffer.alloc(0);
  private serverBuf: Buffer = Buffer.alloc(0);
  /** Text of a Parse waiting for its Sync. */
  private parsed: string | undefined;
  /** The matched statement whose reply is in progress on this connection. */
  private target: string | undefined;
  /** Set once this connection sent a statement matching the arming: its COMMIT may be cut. */
  private sentMatch = false;
  /** Set by 'during-connect': the server's first reply is not forwarded; the cut comes instead. */
  private doomed: Arming | undefined;
  /** Writes to the client not yet flushed: cutting its end waits for them. */
  private pendingClientWrites = 0;
  /** How to end the client's side once its writes are flushed (set by a cut). */
  private endClientWhenFlushed: CutClose | undefined;

  constructor(
    readonly id: number,
    private readonly client: net.Socket,
    private readonly server: net.Socket,
    private readonly proxy: StageProxy,
  ) {
    client.on('error', () => {});
    server.on('error', () => {});
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    server.on('data', (chunk: Buffer) => this.fromServer(chunk));
    // Back-pressure both ways, so a 50 000-row result is not buffered whole in the proxy.
    client.on('drain', () => server.resume());
    server.on('drain', () => client.resume());
    client.on('close', (hadError) => {
      if (this.phase === 'cut') return;
      if (hadError) server.destroy();
      else server.end();
    });
    server.on('close', (hadError) => {
      if (this.phase === 'cut') return;
      if (hadError) client.destroy();
      else client.end();
    });
  }

  get closed(): boolean {
    return this.client.destroyed && this.server.destroyed;
  }

  destroy(): void {
    this.client.destroy();
    this.server.destroy();
  }

  private toServer(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (!this.server.write(bytes)) this.client.pause();
  }

  private toClient(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.pendingClientWrites++;
    const more = this.client.write(bytes, () => {
      const close = this.endClientWhenFlushed;
      if (--this.pendingClientWrites === 0 && close !== undefined) this.endClient(close);
    });
    if (!more) this.server.pause();
  }

  private endClient(close: CutClose): void {
    this.endClientWhenFlushed = undefined;
    const client = this.client;
    setTimeout(() => {
      if (client.destroyed) return;
      if (close === 'reset') {
        client.resetAndDestroy();
        return;
      }
      client.end();
      // The client closes its side on seeing the FIN; one that does not is not waited for.
      const timer = setTimeout(() => client.destroy(), 5_000);
      timer.unref();
      client.once('close', () => clearTimeout(timer));
    }, CLIENT_GRACE_MS);
  }

  /** Cuts now: what was forwarded so far still arrives at both ends, then nothing more. */
  private cut({ stage, close }: Arming, statement: string | undefined): void {
    this.phase = 'cut';
    this.clientBuf = Buffer.alloc(0);
    this.serverBuf = Buffer.alloc(0);
    const server = this.server;
    const serverClosed = server.closed
      ? Promise.resolve()
      : new Promise<void>((resolve) => server.once('close', () => resolve()));
    this.proxy.recordCut({ stage, close, connection: this.id, statement, serverClosed });
    // The client's end: RST or FIN, once the bytes it was already given have been written.
    if (this.pendingClientWrites === 0) this.endClient(close);
    else this.endClientWhenFlushed = close;
    // The server's end: FIN after what it was sent; its further output is read and dropped.
    this.client.resume();
    this.server.resume();
    this.server.end();
    const timer = setTimeout(() => this.server.destroy(), 5_000);
    timer.unref();
    this.server.once('close', () => clearTimeout(timer));
  }

  private fromClient(chunk: Buffer): void {
    if (this.phase === 'cut') return;
    if (this.phase === 'opaque') {
      this.toServer(chunk);
      return;
    }
    this.clientBuf = this.clientBuf.length === 0 ? chunk : Buffer.concat([this.clientBuf, chunk]);
    this.drainClient();
  }

  /** Forwards the client's whole messages, acting on each; keeps an incomplete tail. */
  private drainClient(): void {
    const buf = this.clientBuf;
    let offset = 0;
    while (this.phase !== 'negotiating' && this.phase !== 'cut' && this.phase !== 'opaque') {
      const frame = nextFrame(buf, offset, this.phase !== 'startup');
      if (frame === null) {
        this.phase = 'opaque'; // not a protocol we understand: stop interpreting, keep proxying
        break;
      }
      if (frame === undefined) break;
      offset = frame.end;
      const cutAfter = this.onClientFrame(frame);
      if (cutAfter !== undefined) {
        this.toServer(buf.subarray(0, offset));
        this.cut(cutAfter.arming, cutAfter.statement);
        return;
      }
      // (Re-read: onClientFrame may have moved the phase on.)
      if ((this.phase as Phase) === 'negotiating') {
        // The server answers an SSL/GSS request with one byte; the rest waits for it.
        this.toServer(buf.subarray(0, offset));
        this.clientBuf = buf.subarray(offset);
        return;
      }
    }
    if (this.phase === 'opaque') {
      this.toServer(buf);
      this.clientBuf = Buffer.alloc(0);
      return;
    }
    this.toServer(buf.subarray(0, offset));
    this.clientBuf = buf.subarray(offset);
  }

  /** Returns a cut to make after forwarding this frame, if any. */
  private onClientFrame(frame: Frame): PendingCut | undefined {
    if (frame.type === undefined) {
      const code = frame.body.length >= 4 ? frame.body.readInt32BE(0) : 0;
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        this.phase = 'negotiating';
      } else if (code === CANCEL_REQUEST) {
        this.phase = 'opaque';
      } else if (code >> 16 === 3) {
        this.phase = 'auth';
        this.doomed = this.proxy.claim('during-connect');
      } else {
        this.phase = 'opaque';
      }
      return;
    }
    if (this.phase !== 'ready') return;
    if (frame.type === 'P') {
      this.parsed = parseText(frame.body);
      return;
    }
    let statement: string | undefined;
    if (frame.type === 'Q') statement = cstring(frame.body);
    else if (frame.type === 'S' && this.parsed !== undefined) {
      statement = this.parsed;
      this.parsed = undefined;
    }
    if (statement === undefined) return;
    return this.onStatementSent(statement);
  }

  private onStatementSent(statement: string): PendingCut | undefined {
    const arming = this.proxy.arming;
    if (arming === undefined) return;
    const matches = arming.match === undefined || statement.includes(arming.match);
    if (matches) this.sentMatch = true;
    if (arming.stage === 'during-commit') {
      if (!isCommit(statement)) return;
      const ours = arming.match === undefined || this.sentMatch;
      // The transaction is over either way: a later COMMIT on this pooled connection is not it.
      this.sentMatch = false;
      return ours ? this.claimed('during-commit', statement) : undefined;
    }
    if (!matches) return;
    if (arming.stage === 'after-send') {
      return this.claimed('after-send', statement);
    }
    if (arming.stage === 'mid-result' || arming.stage === 'after-result') this.target = statement;
  }

  private fromServer(chunk: Buffer): void {
    if (this.phase === 'cut') return; // after a cut the server's output is dropped
    if (this.phase === 'opaque') {
      this.toClient(chunk);
      return;
    }
    if (this.phase === 'negotiating') {
      // One unframed byte: 'N' (go on in plain text) or 'S'/'G' (encryption: opaque from here).
      const answer = String.fromCharCode(chunk[0]!);
      this.toClient(chunk.subarray(0, 1));
      this.phase = answer === 'N' ? 'startup' : 'opaque';
      const rest = chunk.subarray(1);
      if (this.phase === 'opaque') {
        this.toServer(this.clientBuf);
        this.clientBuf = Buffer.alloc(0);
        this.toClient(rest);
        return;
      }
      this.drainClient();
      if (rest.length === 0) return;
      chunk = rest;
    }
    if (this.doomed !== undefined) {
      // During connect: the client never sees the server's first reply (its auth request).
      this.cut(this.doomed, undefined);
      return;
    }
    this.serverBuf = this.serverBuf.length === 0 ? chunk : Buffer.concat([this.serverBuf, chunk]);
    const buf = this.serverBuf;
    let offset = 0;
    for (;;) {
      const frame = nextFrame(buf, offset, true);
      if (frame === null) {
        this.phase = 'opaque';
        this.toClient(buf);
        this.serverBuf = Buffer.alloc(0);
        return;
      }
      if (frame === undefined) break;
      offset = frame.end;
      const cut = this.onServerFrame(frame);
      if (cut !== undefined) {
        this.toClient(buf.subarray(0, offset));
        this.cut(cut.arming, cut.statement);
        return;
      }
    }
    this.toClient(buf.subarray(0, offset));
    this.serverBuf = buf.subarray(offset);
  }

  /** The cut to make for `statement` if the proxy is armed for `stage` (taking the arming). */
  private claimed(stage: CutStage, statement: string): PendingCut | undefined {
    const arming = this.proxy.claim(stage);
    return arming === undefined ? undefined : { arming, statement };
  }

  private onServerFrame(frame: Frame): PendingCut | undefined {
    if (frame.type === 'Z') {
      if (this.phase === 'auth') {
        this.phase = 'ready';
        return;
      }
      const statement = this.target;
      this.target = undefined;
      return statement === undefined ? undefined : this.claimed('after-result', statement);
    }
    if (frame.type === 'D' && this.target !== undefined) {
      return this.claimed('mid-result', this.target);
    }
  }
}

/**
 * The proxy. Arm it with {@link StageProxy.arm}: the first connection to reach that stage (with a
 * matching statement) is cut, and the proxy disarms itself, so one arming cuts one connection.
 * Everything else is forwarded untouched.
 *
 * @example
 * const proxy = await StageProxy.start({ target: cluster.primary });
 * const pool = new pg.Pool({ host: proxy.host, port: proxy.port, ... });
 * proxy.arm('mid-result', { match: 'fault-point-7' });
 * await pool.query("SELECT g, 'fault-point-7' AS m FROM generate_series(1, 1000) g"); // ECONNRESET
 * proxy.cuts; // [{ stage: 'mid-result', connection: 1, statement: '...' }]
 */
export class StageProxy {
  /** Every cut made, in order. */
  readonly cuts: CutReport[] = [];
  #arming: Arming | undefined;
  #accepted = 0;
  readonly #connections = new Set<StageConnection>();

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(options: StageProxyOptions): Promise<StageProxy> {
    const target = parseLoopbackTarget(options.target, 'StageProxy target');
    const listen = checkListen(
      options.listen?.host ?? '127.0.0.1',
      options.listen?.port ?? 0,
      'StageProxy listen',
    );
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => {});
    const address = server.address() as net.AddressInfo;
    const proxy = new StageProxy(server, target, address.address, address.port);
    server.on('connection', (socket) => proxy.#accept(socket));
    return proxy;
  }

  /** Cuts the next connection that reaches `stage` (with a statement containing `match`). */
  arm(stage: CutStage, options: ArmOptions = {}): void {
    this.#arming = { stage, match: options.match, close: options.close ?? 'reset' };
  }

  /** Cancels an arming that has not fired. */
  disarm(): void {
    this.#arming = undefined;
  }

  /** The arming in force, if any. */
  get arming(): Readonly<Arming> | undefined {
    return this.#arming;
  }

  /** Connections accepted so far. */
  get accepted(): number {
    return this.#accepted;
  }

  /** Connections not yet closed at both ends. */
  get open(): number {
    let n = 0;
    for (const c of this.#connections) if (!c.closed) n++;
    return n;
  }

  /** Takes the arming if it is for `stage`: one arming, one cut. */
  claim(stage: CutStage): Arming | undefined {
    const arming = this.#arming;
    if (arming?.stage !== stage) return undefined;
    this.#arming = undefined;
    return arming;
  }

  recordCut(report: CutReport): void {
    this.cuts.push(report);
  }

  /** Destroys every connection and stops listening. */
  async close(): Promise<void> {
    this.#arming = undefined;
    for (const c of this.#connections) c.destroy();
    this.#connections.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    const id = ++this.#accepted;
    const upstream = net.connect({ host: this.target.host, port: this.target.port });
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const connection = new StageConnection(id, client, upstream, this);
    this.#connections.add(connection);
    const forget = () => {
      if (connection.closed) this.#connections.delete(connection);
    };
    client.on('close', forget);
    upstream.on('close', forget);
  }
}
