/**
 * Choosing a replica for a read that must see a given write: one whose replay has reached the
 * write's token. When none has, the usable replicas are asked where they are, briefly, until
 * `waitMs` runs out; then the primary serves the read, which is always up to date.
 */
import type { Endpoint } from '../endpoint/endpoint.js';
import { sleep } from '../retry/sleep.js';
import type { Router } from '../routing/router.js';

const POLL_MS = 10;

export async function endpointAtLeast(
  router: Router,
  position: bigint,
  waitMs: number,
  signal: AbortSignal | undefined,
): Promise<Endpoint> {
  const caughtUp = (e: Endpoint) =>
    e.isUsable() && e.replayLsn !== undefined && e.replayLsn >= position;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const replica = router.pickReplica(caughtUp);
    if (replica !== undefined) return replica;
    const left = deadline - Date.now();
    if (left <= 0) return router.primary;
    await Promise.all(router.replicas.filter((r) => r.isUsable()).map((r) => r.refreshReplayLsn()));
    if (router.pickReplica(caughtUp) !== undefined) continue;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())), signal);
  }
}
