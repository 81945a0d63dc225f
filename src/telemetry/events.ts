/**
 * Typed events, emitted so that no listener can break a call: a listener that throws is logged
 * and the call goes on (tarn.js and cockatiel's lesson).
 */
import { EventEmitter } from 'node:events';
import type { LoggerLike } from './logger.js';

export type BreakerState = 'closed' | 'open' | 'half-open';
export type EndpointRole = 'primary' | 'replica';
/**
 * Where an endpoint stands in read routing: 'routed' (its full share of reads), 'slow-start' (a
 * share ramping up after it came back), 'ejected' (no new reads: silent, down, circuit not
 * closed, or held back by the health monitor), 'panic' (ejected as an outlier, but given reads
 * because every replica is out).
 */
export type RoutingState = 'routed' | 'ejected' | 'slow-start' | 'panic';
export type RejectReason =
  | 'circuit-open'
  | 'queue-full'
  | 'acquire-timeout'
  | 'timeout'
  | 'aborted'
  | 'closed'
  | 'down';

/** Payloads of the events a ResilientPool emits. */
export interface ResilientPoolEvents {
  /** A circuit changed state. */
  breaker: { endpoint: string; role: EndpointRole; state: BreakerState; previous: BreakerState };
  /** A failed call is being tried again after `delayMs`. */
  retry: { endpoint: string; attempt: number; delayMs: number; error: unknown };
  /** A call was refused before reaching the database. */
  reject: { endpoint: string; reason: RejectReason };
  /** A replica was taken out of read routing (its probe failed, or its circuit opened). */
  eject: { endpoint: string; reason: string };
  /** An ejected replica passed a probe and serves reads again. */
  readmit: { endpoint: string; ejectedMs: number };
  /**
   * An endpoint's routing state changed (checked at every sweep of the pool's housekeeping):
   * a replica gone silent is ejected as an outlier, panic routing began or ended, a replica came
   * back and slow-starts, a ramp ended. `reason` says why it is out (null when routed).
   */
  routing: {
    endpoint: string;
    state: RoutingState;
    previous: RoutingState;
    reason: string | null;
  };
  /**
   * An endpoint (primary or replica) was declared down: its health probe did not answer. Its
   * calls in flight were ended and new ones are refused until a probe passes.
   */
  down: { endpoint: string; role: EndpointRole; reason: string };
  /** A down endpoint passed a probe (or a failover re-pointed it) and takes calls again. */
  up: { endpoint: string; role: EndpointRole; reason: string };
  /** Writes moved to another primary candidate (with `primary: [candidates]`). */
  failover: { from: string; to: string };
  /** A client from connect() was held longer than `leakDetection.threshold`. */
  leak: { endpoint: string; heldMs: number; acquiredAt: string };
  /** The read-through cache's breaker over Redis changed state. */
  cacheBreaker: { state: BreakerState; previous: BreakerState };
  /**
   * A wrapped pool reported an error on an idle client (the server restarted, say). Listeners
   * also get pg-pool's second argument, the client, and the endpoint's name: see
   * {@link PoolClientEvents}.
   */
  error: Error & { endpoint?: string };
}

export type EventName = keyof ResilientPoolEvents;

/**
 * pg-pool's own events, forwarded from every wrapped pool with pg's arguments in pg's order, then
 * the name of the endpoint whose pool emitted them, so that a listener written for a pg.Pool
 * works unchanged: `db.on('connect', (client) => client.query('SET search_path TO app'))` runs on
 * each new connection of the primary and of every replica.
 */
export interface PoolClientEvents<Client> {
  /** A wrapped pool opened a new connection (before any caller gets it). */
  connect: [client: Client, endpoint: string];
  /** A wrapped pool handed a client out (for a statement, a transaction or `connect()`). */
  acquire: [client: Client, endpoint: string];
  /**
   * A client went back to its pool; `err` is what it was released with (an Error or `true`)
   * when it was released to be destroyed.
   */
  release: [err: Error | boolean | undefined, client: Client, endpoint: string];
  /** A wrapped pool closed a connection (idle timeout, destroyed after an error, `end()`). */
  remove: [client: Client, endpoint: string];
  /** An idle client of a wrapped pool failed; `err.endpoint` names the endpoint too. */
  error: [err: Error & { endpoint?: string }, client: Client | undefined, endpoint: string];
}

export type PoolEventName = keyof PoolClientEvents<unknown>;

/** The pg-pool events forwarded only while someone listens ('error' is always listened to). */
export const CLIENT_EVENTS = ['connect', 'acquire', 'release', 'remove'] as const;

/** The listener of a pool event. */
export type PoolEventListener<K extends PoolEventName, Client> = (
  ...args: PoolClientEvents<Client>[K]
) => void;

/** EventEmitter whose `emit` never throws into the caller. */
export class SafeEmitter extends EventEmitter {
  private listenerFailed(err: unknown, event: string): void {
    this.listenerErrorLogger.error({ err, event }, 'resilient-pool event listener threw; ignored');
  }

  constructor(private readonly listenerErrorLogger: LoggerLike) {
    super({ captureRejections: false });
  }

  /** Emits `event` only if someone listens; listener errors are logged, never thrown. */
  protected emitSafely<E extends EventName>(event: E, payload: ResilientPoolEvents[E]): void {
    if (this.listenerCount(event) === 0) return;
    this.callListeners(event, [payload]);
  }

  /**
   * Emits a pg-pool event with its arguments, in the same way. Check `listenerCount` first: the
   * arguments are only gathered when someone listens.
   */
  protected emitPoolEvent<K extends PoolEventName, Client>(
    event: K,
    ...args: PoolClientEvents<Client>[K]
  ): void {
    if (this.listenerCount(event) === 0) return;
    this.callListeners(event, args);
  }

  private callListeners(event: string, args: unknown[]): void {
    // A copy: a listener that removes itself (once) or adds another does not skip or repeat one.
    for (const listener of this.rawListeners(event)) {
      try {
        const returned: unknown = (listener as (...a: unknown[]) => unknown).apply(this, args);
        // An async listener's rejection must not become an unhandled rejection either. (A
        // thenable check, not instanceof: the listener's Promise may come from another realm.)
        if (typeof (returned as PromiseLike<unknown> | undefined)?.then === 'function') {
          (returned as PromiseLike<unknown>).then(undefined, (err: unknown) =>
            this.listenerFailed(err, event),
          );
        }
      } catch (err) {
        this.listenerFailed(err, event);
      }
    }
  }
}
