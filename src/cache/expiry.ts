/**
 * How long an entry lives. Each entry's ttl is spread at random by ±`jitter` so that entries
 * written together (a deploy, a cold start, an invalidation) do not all expire in the same
 * instant and send their queries to the database together.
 */

/** `ttl` spread uniformly over [ttl·(1-jitter), ttl·(1+jitter)], in whole ms, at least 1. */
export function jitteredTtl(
  ttl: number,
  jitter: number,
  random: () => number = Math.random,
): number {
  if (jitter === 0) return ttl;
  return Math.max(1, Math.round(ttl * (1 + jitter * (2 * random() - 1))));
}
