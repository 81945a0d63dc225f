/** The faults a drill can play, in the order `all` plays them (the failover last: it is final). */
export const SCENARIOS = [
  'replica-kill',
  'replica-hang',
  'primary-hang',
  'network-blackhole',
  'redis-loss',
  'primary-failover',
] as const;

export type ScenarioName = (typeof SCENARIOS)[number];

/** Scenarios that need control of the server processes (not available against external servers). */
export const PROCESS_SCENARIOS: ReadonlySet<ScenarioName> = new Set([
  'replica-kill',
  'replica-hang',
  'primary-hang',
  'primary-failover',
]);

/** Scenarios that need at least one replica. */
export const REPLICA_SCENARIOS: ReadonlySet<ScenarioName> = new Set([
  'replica-kill',
  'replica-hang',
  'primary-failover',
]);

/** Scenarios that need the read cache (a Redis given with --redis or REDIS_URL). */
export const REDIS_SCENARIOS: ReadonlySet<ScenarioName> = new Set(['redis-loss']);

export function isScenarioName(name: string): name is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(name);
}
