/**
 * Errors of idle clients, which pg-pool emits on the wrapped pool (a server restart, a network
 * drop): with no listener Node would end the process (node-postgres #2439, #2499). Each wrapped
 * pool gets one listener, which logs and re-emits the error on the ResilientPool, tagged with the
 * endpoint's name, when someone listens there.
 */
import type { Endpoint } from '../endpoint/endpoint.js';
import { describeError } from '../telemetry/describe-error.js';
import type { LoggerLike } from '../telemetry/logger.js';

export class PoolErrorForwarding {
  private readonly listeners = new Map<Endpoint, (err: Error) => void>();

  constructor(
    endpoints: readonly Endpoint[],
    logger: LoggerLike,
    /** Re-emits on the ResilientPool; returns quietly when nobody listens or it has ended. */
    forward: (err: Error & { endpoint?: string }) => void,
  ) {
    for (const endpoint of endpoints) {
      const listener = (err: Error) => {
        logger.warn(
          { endpoint: endpoint.name, err: describeError(err) },
          'resilient-pool: idle client error (the client was removed from the pool)',
        );
        const tagged = err as Error & { endpoint?: string };
        tagged.endpoint = endpoint.name;
        forward(tagged);
      };
      this.listeners.set(endpoint, listener);
      endpoint.pool.on('error', listener);
    }
  }

  /** Removes the listeners (pools the ResilientPool does not own live on). */
  detach(): void {
    for (const [endpoint, listener] of this.listeners) endpoint.pool.off?.('error', listener);
  }
}
