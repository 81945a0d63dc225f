/**
 * ResilientPools for unit tests: quiet, with zero backoff so retries do not slow tests down,
 * and all ended after each test.
 */
import { afterEach, vi } from 'vitest';
import { ResilientPool, type ResilientPoolOptions } from '../../src/index.js';

/** Returns `make(options)`; every pool it made is ended after each test (fake timers undone). */
export function usePools(): (options: ResilientPoolOptions) => ResilientPool {
  const pools: ResilientPool[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(pools.splice(0).map((p) => p.end({ timeout: 100 })));
  });
  return (options) => {
    const db = new ResilientPool({
      logger: false,
      retry: { minTimeout: 0, maxTimeout: 0 },
      ...options,
    });
    pools.push(db);
    return db;
  };
}
