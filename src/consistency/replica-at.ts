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
    await Promise.all(
      router.replicas.filter((r) => r.isUsable()).map((r) => r.refreshReplayLsn(asking)),
    );
    if (signal?.aborted) throw abortError(undefined, signal);
    if (router.pickReplica(caughtUp) !== undefined) continue;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())), signal, lifetime);
  }
}
