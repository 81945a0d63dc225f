/**
 * When did the pool notice a fault? Either the target's circuit opened (seen through 'breaker'
 * events), or the pool stopped sending it calls while traffic went on (the least-busy balancer
 * routes around an endpoint whose calls hang). Polled every 100 ms while the fault is held.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ResilientPool } from '../index.js';

const POLL_MS = 100;
/** No new call for this long, while others got calls, counts as the endpoint being avoided. */
const AVOIDED_AFTER_MS = 300;

/**
 * Holds the fault for `holdMs`, watching `target`; returns the time (from `now()`) the pool
 * started avoiding it, or null.
 */
export async function holdAndWatch(
  db: ResilientPool,
  target: string,
  holdMs: number,
  now: () => number,
): Promise<number | null> {
  const deadline = now() + holdMs;
  if (!db.stats().endpoints.some((e) => e.name === target)) {
    // Not a database endpoint (Redis): only its breaker's events tell.
    await delay(holdMs);
    return null;
  }
  const callsOf = () => {
    let mine = 0;
    let all = 0;
    for (const e of db.stats().endpoints) {
      all += e.calls;
      if (e.name === target) mine = e.calls;
    }
    return { mine, all };
  };
  let last = callsOf();
  let quietSince: number | null = null;
  let avoidedAt: number | null = null;
  while (now() < deadline) {
    await delay(Math.min(POLL_MS, Math.max(0, deadline - now())));
    const current = callsOf();
    const t = now();
    if (current.mine === last.mine && current.all > last.all) {
      quietSince ??= t - POLL_MS;
      if (avoidedAt === null && t - quietSince >= AVOIDED_AFTER_MS) avoidedAt = quietSince;
    } else if (current.mine !== last.mine) {
      quietSince = null;
    }
    last = current;
  }
  return avoidedAt;
}
