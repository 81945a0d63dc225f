/**
 * When did the pool notice a fault? Its circuit opening, or the endpoint declared down or
 * ejected, are events (recorder.ts); here, whether the pool stopped sending it calls while
 * callers kept asking (the least-busy balancer routes around an endpoint whose calls hang).
 * Polled every 100 ms while the fault is held.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ResilientPool } from '../index.js';

const POLL_MS = 100;
/** No new call for this long, while others got calls, counts as the endpoint being avoided. */
const AVOIDED_AFTER_MS = 300;

/**
 * Holds the fault for `holdMs`, watching `target`; returns the time (from `now()`) the pool
 * started avoiding it, or null. "Avoiding" needs callers that still asked: for a replica, other
 * replicas kept getting calls; for the primary (there is no other), writes kept being started
 * (`writesStarted` grew) while none reached it. Callers all stuck on a hung primary start
 * nothing, which is not the pool routing around it.
 */
export async function holdAndWatch(
  db: ResilientPool,
  target: string,
  holdMs: number,
  now: () => number,
  writesStarted: () => number,
): Promise<number | null> {
  const deadline = now() + holdMs;
  const endpoint = db.stats().endpoints.find((e) => e.name === target);
  if (endpoint === undefined) {
    // Not a database endpoint (Redis, every node): only events tell.
    await delay(holdMs);
    return null;
  }
  const role = endpoint.role;
  const callsOf = () => {
    let mine = 0;
    let others = 0;
    for (const e of db.stats().endpoints) {
      if (e.name === target) mine = e.calls;
      else if (e.role === role) others += e.calls;
    }
    return { mine, asked: role === 'primary' ? writesStarted() : others };
  };
  let last = callsOf();
  let quietSince: number | null = null;
  let avoidedAt: number | null = null;
  while (now() < deadline) {
    await delay(Math.min(POLL_MS, Math.max(0, deadline - now())));
    const current = callsOf();
    const t = now();
    if (current.mine === last.mine && current.asked > last.asked) {
      quietSince ??= t - POLL_MS;
      if (avoidedAt === null && t - quietSince >= AVOIDED_AFTER_MS) avoidedAt = quietSince;
    } else if (current.mine !== last.mine) {
      quietSince = null;
    }
    last = current;
  }
  return avoidedAt;
}
