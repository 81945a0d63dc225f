/**
 * `end()`: refuse new calls, let the accepted ones finish within the timeout, end what is still
 * running when it runs out, then close what the pool owns. Nothing of the pool's outlives it: no
 * timer, no sleep, no connection it took.
 */
import type { ReadThroughCache } from '../cache/index.js';
import type { Endpoint } from '../endpoint/endpoint.js';
import { PoolClosedError } from '../errors.js';
import type { HealthMonitor } from '../health/monitor.js';
import { describeError } from '../telemetry/describe-error.js';
import type { LoggerLike } from '../telemetry/logger.js';
import { withTimeout } from '../util/with-timeout.js';
import type { CallPath } from './call-path.js';
import type { Housekeeping } from './housekeeping.js';
import type { PoolEventForwarding } from './pool-events.js';

/** Where a pool is in its life; `end()` moves it from open to ending to ended, once. */
export type Lifecycle =
  | { readonly state: 'open' }
  | { readonly state: 'ending'; readonly done: Promise<void> }
  | { readonly state: 'ended'; readonly done: Promise<void> };

/** What shutting down touches. */
export interface PoolParts {
  endpoints: readonly Endpoint[];
  callPath: CallPath;
  /** Aborted first: every sleep and wait of a call ends with PoolClosedError. */
  lifetime: AbortController;
  housekeeping: Housekeeping;
  health: HealthMonitor | undefined;
  readCache: ReadThroughCache | undefined;
  poolEvents: PoolEventForwarding;
  ownsPools: boolean;
  logger: LoggerLike;
}

export async function shutDown(parts: PoolParts, timeoutMs: number): Promise<void> {
  const { endpoints, logger } = parts;
  const startedAt = Date.now();
  // Sleeps and waits end now (a retry after them would be refused anyway): nothing of theirs
  // keeps the process alive past end().
  parts.lifetime.abort(new PoolClosedError());
  parts.housekeeping.stop();
  parts.health?.stop();
  for (const endpoint of endpoints) endpoint.close();
  // Calls already admitted or queued were accepted before end(): let them finish.
  if ((await drainWithin(parts, timeoutMs)) === 'timeout') {
    logger.warn(
      { timeoutMs, inFlight: endpoints.map((e) => [e.name, e.gate.inUse, e.gate.waiting]) },
      'resilient-pool: end() timed out waiting for in-flight calls; ending them',
    );
    // Out of time: what is still running is ended (connections destroyed). A statement that
    // may have written rejects with OutcomeUnknownError.
    for (const endpoint of endpoints) endpoint.endEverything(() => new PoolClosedError());
  }
  // Entry writes started by reads that already returned: each store call is bounded by the
  // cache's own timeout. The application's Redis client is left open.
  if (parts.readCache !== undefined) {
    await parts.readCache.whenIdle();
    parts.readCache.close();
  }
  for (const endpoint of endpoints) endpoint.shutdown();
  if (!parts.ownsPools) {
    parts.poolEvents.detach();
    return;
  }
  // pg's end() waits for every checked-out client; a client leaked by the application would
  // hold it forever, so it is given what is left of the timeout.
  const remaining = Math.max(1_000, timeoutMs - (Date.now() - startedAt));
  const results = await Promise.allSettled(
    endpoints.map((e) => withTimeout(e.pool.end(), remaining, e.name)),
  );
  for (const [i, r] of results.entries()) {
    if (r.status === 'rejected') {
      logger.warn(
        { endpoint: endpoints[i]?.name, err: describeError(r.reason) },
        'resilient-pool: ending a wrapped pool failed',
      );
    }
  }
}

/** Waits until no call holds or waits for a permit and none is between retries, or time is up. */
async function drainWithin(parts: PoolParts, timeoutMs: number): Promise<'drained' | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const drained = (async () => {
    await parts.callPath.idle();
    await Promise.all(parts.endpoints.map((e) => e.drained()));
    return 'drained' as const;
  })();
  try {
    return await Promise.race([drained, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
