/**
 * What a drill decides before it starts: which scenarios the setup can play and in what order
 * (the promotions last, the planned one first), and how options given for the pool under test
 * combine with the drill's own.
 */
import { describe, expect, it } from 'vitest';
import { availableScenarios } from '../../src/drill/run-drill.js';
import { SCENARIO_INFO, SCENARIOS, scenarioList } from '../../src/drill/scenario-names.js';
import { drillQueue, mergePoolOptions } from '../../src/drill/targets.js';

const local = { external: false, replicas: 2, redis: true };

describe('availableScenarios', () => {
  it('plays everything on a local cluster with two replicas and Redis, promotions last', () => {
    const { play, skipped } = availableScenarios(
      ['primary-failover', 'overload', 'planned-switchover', 'replica-lag'],
      local,
    );
    expect(play).toEqual(['overload', 'replica-lag', 'planned-switchover', 'primary-failover']);
    expect(skipped).toEqual([]);
    expect(availableScenarios(SCENARIOS, local).play).toEqual([...SCENARIOS]);
  });

  it('says why it skips what the setup cannot play', () => {
    const { play, skipped } = availableScenarios(SCENARIOS, {
      external: false,
      replicas: 1,
      redis: false,
    });
    expect(play).not.toContain('primary-failover');
    expect(play).toContain('planned-switchover');
    expect(skipped).toEqual([
      'redis-loss: needs a Redis for the read cache (--redis URL, or REDIS_URL)',
      'redis-hang: needs a Redis for the read cache (--redis URL, or REDIS_URL)',
      'primary-failover: needs 2 replicas (quorum commit keeps acknowledged writes)',
    ]);
    expect(
      availableScenarios(['replica-kill', 'overload'], { ...local, replicas: 0 }).skipped,
    ).toEqual(['replica-kill: needs a replica', 'overload: needs a replica']);
  });

  it('plays only network faults and the burst against external servers', () => {
    const { play } = availableScenarios(SCENARIOS, { external: true, replicas: 2, redis: true });
    expect(play).toEqual([
      'network-blackhole',
      'connection-reset',
      'overload',
      'redis-loss',
      'redis-hang',
    ]);
  });
});

describe('the scenario catalogue', () => {
  it('describes every scenario in one line and says which errors it expects', () => {
    const lines = scenarioList().split('\n');
    expect(lines).toHaveLength(SCENARIOS.length);
    for (const name of SCENARIOS) {
      expect(SCENARIO_INFO[name].summary).not.toMatch(/\n/);
      expect(SCENARIO_INFO[name].expected.length).toBeGreaterThan(20);
    }
    expect(SCENARIOS.filter((n) => SCENARIO_INFO[n].needs.final)).toEqual([
      'planned-switchover',
      'primary-failover',
    ]);
  });
});

describe('mergePoolOptions', () => {
  const base = {
    breaker: { consecutiveFailures: 3, resetTimeout: 1_500 },
    queue: { maxWaiting: 100 },
    logger: false as const,
  };

  it("merges each group over the drill's, and adds groups it lacks", () => {
    expect(
      mergePoolOptions(base, { breaker: { resetTimeout: 500 }, health: { intervalMs: 250 } }),
    ).toEqual({
      breaker: { consecutiveFailures: 3, resetTimeout: 500 },
      queue: { maxWaiting: 100 },
      logger: false,
      health: { intervalMs: 250 },
    });
    expect(mergePoolOptions(base, undefined)).toBe(base);
  });

  it('replaces what is not a plain group', () => {
    const logger = { info() {}, warn() {}, error() {}, debug() {} };
    const merged = mergePoolOptions(base, { logger } as never);
    expect((merged as { logger: unknown }).logger).toBe(logger);
  });
});

describe("the drill's queue", () => {
  it('is long enough for outages, and shed by queue delay so that overload is refused at once', () => {
    expect(drillQueue()).toEqual({
      maxWaiting: 100,
      acquireTimeout: 1_000,
      maxQueueDelayMs: 7,
      adaptiveLimit: false,
    });
  });
});
