/**
 * One local cluster per test file, for vitest (or any runner with beforeAll/afterAll hooks).
 */
import { type LocalCluster, type LocalClusterOptions, startLocalCluster } from './cluster.js';

/** The two hooks the helper needs; pass vitest's (or jest's, or mocha's before/after). */
export interface SuiteHooks {
  beforeAll(fn: () => Promise<void>, timeout?: number): void;
  afterAll(fn: () => Promise<void>, timeout?: number): void;
}

/** What `useLocalCluster` returns: the cluster, available inside tests and hooks. */
export interface LocalClusterHandle {
  readonly cluster: LocalCluster;
}

/**
 * Starts a real primary with streaming replicas before the file's tests and stops it (removing
 * its files) after them. Hooks are passed in so the library does not import a test runner.
 *
 * @example
 * import { afterAll, beforeAll, it } from 'vitest';
 * import { useLocalCluster } from 'resilient-pool/testing';
 *
 * const db = useLocalCluster({ beforeAll, afterAll }, { replicas: 2 });
 * it('survives a replica dying', async () => {
 *   await db.cluster.replicas[0].kill();
 * });
 */
export function useLocalCluster(
  hooks: SuiteHooks,
  options: LocalClusterOptions = {},
): LocalClusterHandle {
  let cluster: LocalCluster | undefined;
  // Start-up takes a few seconds, more on a busy 2-core machine.
  hooks.beforeAll(async () => {
    cluster = await startLocalCluster(options);
  }, 120_000);
  hooks.afterAll(async () => {
    await cluster?.stop();
    cluster = undefined;
  }, 60_000);
  return {
    get cluster(): LocalCluster {
      if (cluster === undefined) {
        throw new Error('useLocalCluster(): the cluster exists only inside tests and hooks');
      }
      return cluster;
    },
  };
}
