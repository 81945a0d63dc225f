/**
 * pg-pool's events, forwarded from every wrapped pool to the ResilientPool with the endpoint's
 * name, so that a listener written for a pg.Pool works on the ResilientPool unchanged
 * (`db.on('connect', (client) => client.query('SET ...'))` runs for the clients of every
 * endpoint). Each wrapped pool gets one listener per event; it costs a `listenerCount` check
 * when nobody listens on the ResilientPool, and allocates nothing then.
 *
 * 'error' (an idle client failed: a server restart, a network drop) is special: with no
 * listener Node would end the process (node-postgres #2439, #2499), so it is always listened to,
 * logged, and re-emitted, tagged with the endpoint's name, only when someone listens.
 */
import type { Endpoint } from '../endpoint/endpoint.js';
import { describeError } from '../telemetry/describe-error.js';
import { CLIENT_EVENTS, type PoolClientEvents, type PoolEventName } from '../telemetry/events.js';
import type { LoggerLike } from '../telemetry/logger.js';

/** Where the events go: the ResilientPool. */
export interface PoolEventSink {
  /** Whether anyone listens to `event` (checked before any argument list is made). */
  listening(event: PoolEventName): boolean;
  /** Emits so that no listener can throw into pg-pool (SafeEmitter). */
  emit<K extends PoolEventName>(event: K, args: PoolClientEvents<unknown>[K]): void;
}

/** A wrapped pool as an event source: pg-pool (an EventEmitter) takes any event name. */
interface EventSource {
  on(event: string, listener: (...args: never[]) => void): unknown;
  off?(event: string, listener: (...args: never[]) => void): unknown;
}

type Listener = (...args: never[]) => void;

export class PoolEventForwarding {
  private readonly attached: Array<{ source: EventSource; event: string; listener: Listener }> = [];

  constructor(
    endpoints: readonly Endpoint[],
    logger: LoggerLike,
    sink: PoolEventSink,
    /** False once the ResilientPool has ended: idle-client errors are then only logged. */
    forwardErrors: () => boolean,
  ) {
    for (const endpoint of endpoints) {
      const name = endpoint.name;
      const source = endpoint.pool as unknown as EventSource;
      this.attach(source, 'error', (err: Error, client?: unknown) => {
        logger.warn(
          { endpoint: name, err: describeError(err) },
          'resilient-pool: idle client error (the client was removed from the pool)',
        );
        if (!forwardErrors() || !sink.listening('error')) return;
        const tagged = err as Error & { endpoint?: string };
        tagged.endpoint = name;
        sink.emit('error', [tagged, client, name]);
      });
      for (const event of CLIENT_EVENTS) {
        const listener =
          event === 'release'
            ? (err: Error | boolean | undefined, client: unknown) => {
                if (sink.listening('release')) sink.emit('release', [err, client, name]);
              }
            : (client: unknown) => {
                if (sink.listening(event)) sink.emit(event, [client, name]);
              };
        try {
          this.attach(source, event, listener);
        } catch (err) {
          // A pg-compatible pool that knows only 'error': it has no such event to forward.
          logger.debug(
            { endpoint: name, event, err: describeError(err) },
            'resilient-pool: the wrapped pool does not emit this event',
          );
        }
      }
    }
  }

  private attach(source: EventSource, event: string, listener: Listener): void {
    source.on(event, listener);
    this.attached.push({ source, event, listener });
  }

  /** Removes the listeners (pools the ResilientPool does not own live on). */
  detach(): void {
    for (const { source, event, listener } of this.attached) source.off?.(event, listener);
    this.attached.length = 0;
  }
}
