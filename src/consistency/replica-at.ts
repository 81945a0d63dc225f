/**
 * Choosing a replica for a read that must see a given write: one whose replay has reached the
 * write's token. When none has, the usable replicas are asked where they are, briefly, until
 * `waitMs` runs out; then the primary serves the read, which is always up to date.
 */
import type { Endpoint } from '../endpoint/endpoint.js';
import { abortError } from '../errors.js';
import { sleep } from '../retry/sleep.js';
import type { Router } from '../routing/router.js';

const POLL_MS = 10;

export async function endpointAtLeast(
  router: Router,
  position: bigint,
  waitMs: number,
  signal: AbortSignal | undefined,
  lifetime?: AbortSignal,
): Promise<Endpoint> {
  const caughtUp = (e: Endpoint) =>
    e.isUsable() && e.replayLsn !== undefined && e.replayLsn >= position;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const replica = router.pickReplica(caughtUp);
    if (replica !== undefined) return replica;
    const left = deadline - Date.now();
    if (left <= 0) return router.primary;
    // Asking is bounded by what is left of the wait and by the call's signal: a replica that does
    // not answer simply does not qualify.
    const asking = AbortSignal.any(
      [AbortSignal.timeout(left), signal, lifetime].filter((s) => s !== undefined),
    );
    await askReplicas(router, caughtUp, asking);
    if (signal?.aborted) throw abortError(undefined, signal);
    if (router.pickReplica(caughtUp) !== undefined) continue;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())), signal, lifetime);
  }
}

/**
 * Asks every usable replica how far it has replayed; settles as soon as one answers caught up,
 * else once all have answered or given up. Waiting for all would hold the read for the slowest:
 * a hung replica (still usable until the health monitor notices) answers only when `signal`
 * ends the ask, which is the whole of what is left of the wait. The asks still out go on, bounded
 * by `signal`, and update their replica's position when they answer.
 */
function askReplicas(
  router: Router,
  caughtUp: (endpoint: Endpoint) => boolean,
  signal: AbortSignal,
): Promise<void> {
  const asked = router.replicas.filter((r) => r.isUsable());
  if (asked.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let outstanding = asked.length;
    for (const replica of asked) {
      // refreshReplayLsn never rejects: an unreachable replica simply does not qualify.
      void replica.refreshReplayLsn(signal).then(() => {
        outstanding--;
        if (outstanding === 0 || caughtUp(replica)) resolve();
      });
    }
  });
}
