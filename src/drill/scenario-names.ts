/**
 * The drill's scenarios: their names, what each does in one line (`--list`), which errors each is
 * expected to surface and why, and what each needs from the setup. What each injects and heals
 * is in faults/.
 */

/**
 * The faults a drill can play, in the order `all` plays them. The two promotions come last: the
 * old primary cannot rejoin (no pg_rewind), so each leaves one node fewer.
 */
export const SCENARIOS = [
  'replica-kill',
  'replica-hang',
  'replica-lag',
  'network-blackhole',
  'connection-reset',
  'backends-terminated',
  'too-many-connections',
  'primary-hang',
  'primary-restart',
  'overload',
  'redis-loss',
  'redis-hang',
  'planned-switchover',
  'primary-failover',
] as const;

export type ScenarioName = (typeof SCENARIOS)[number];

/** What a scenario needs from the setup. */
export interface ScenarioNeeds {
  /** The local cluster: it signals server processes or runs superuser SQL on them. */
  localCluster?: boolean;
  /** Running standbys it needs. */
  replicas?: number;
  /** Quorum commit (two replicas or more at the start), so that a promotion loses nothing. */
  quorum?: boolean;
  /** A Redis for the read cache. */
  redis?: boolean;
  /** It promotes a standby: the old primary stays down, so it plays after everything else. */
  final?: boolean;
}

export interface ScenarioInfo {
  /** What it does, in one line (`--list`). */
  summary: string;
  /** Which errors callers are expected to see, and why. */
  expected: string;
  needs: ScenarioNeeds;
}

export const SCENARIO_INFO: Readonly<Record<ScenarioName, ScenarioInfo>> = {
  'replica-kill': {
    summary: 'SIGKILL a replica, restart it after the hold',
    expected:
      'none: reads that lose their connection ran on a hot standby, so they are re-sent to another endpoint',
    needs: { localCluster: true, replicas: 1 },
  },
  'replica-hang': {
    summary: 'SIGSTOP a replica and its backends (connections accept, nothing answers)',
    expected:
      'none: reads stuck on the frozen replica end by the health monitor declaring it down, then run elsewhere; expect a latency spike, not errors',
    needs: { localCluster: true, replicas: 1 },
  },
  'replica-lag': {
    summary: 'pause WAL replay on a replica (pg_wal_replay_pause) past the lag bound',
    expected:
      'none: the lagging replica is held back from reads once its lag passes routing.maxLagMs; reads after a write token wait for a replica that has it, or go to the primary',
    needs: { localCluster: true, replicas: 1 },
  },
  'network-blackhole': {
    summary: "black-hole a replica's network path (its ChaosProxy swallows every byte)",
    expected:
      'none: reads lost in the black hole end at query_timeout or when the replica is declared down, and are re-sent elsewhere',
    needs: {},
  },
  'connection-reset': {
    summary: 'RST every open connection to every node (its ChaosProxy resets them)',
    expected:
      'writes whose statement was on the wire fail with the lost connection (ECONNRESET) or E_OUTCOME_UNKNOWN: they may have run, so they are never re-sent; calls that took a dead idle client (write ECONNRESET: nothing left) and reads are re-sent; the reset counts once against each circuit, so none opens',
    needs: {},
  },
  'backends-terminated': {
    summary: 'pg_terminate_backend() every client backend on every node',
    expected:
      'writes running at that moment are answered 57P01 (admin_shutdown: rolled back) and re-sent; only a commit caught waiting for a standby fails (a lost connection, or E_OUTCOME_UNKNOWN: it may have run); reads are re-sent; idle clients are discarded',
    needs: { localCluster: true },
  },
  'too-many-connections': {
    summary:
      "fill the primary's max_connections, then end the pool's idle backends: new connections get 53300",
    expected:
      'writes that need a new connection fail with 53300 (too many clients) or E_CIRCUIT_OPEN once the streak opens the circuit; reads are unaffected',
    needs: { localCluster: true },
  },
  'primary-hang': {
    summary: 'SIGSTOP the primary and its backends',
    expected:
      'writes: E_OUTCOME_UNKNOWN for those on the wire when the primary is declared down, then E_ENDPOINT_DOWN / E_CIRCUIT_OPEN until it answers; reads are unaffected',
    needs: { localCluster: true },
  },
  'primary-restart': {
    summary:
      'fast shutdown of the primary, start it again after the hold (pools keep idle clients)',
    expected:
      'writes running at the shutdown are answered 57P01 (rolled back) and re-sent, and fail with the refusals if it is still down (connection-refused / E_CIRCUIT_OPEN) until it is back; a commit caught waiting for a standby fails with a lost connection or E_OUTCOME_UNKNOWN; no call may fail on a dead idle client afterwards',
    needs: { localCluster: true },
  },
  overload: {
    summary: 'open-loop reads at twice what the read endpoints can serve',
    expected:
      "reads refused with E_QUEUE_FULL at the saturated replicas (in microseconds), the burst's and some of the steady workload's, or timed out in the queue (E_ACQUIRE_TIMEOUT); writes unaffected: reads never spill onto the primary for a full queue",
    needs: { replicas: 1 },
  },
  'redis-loss': {
    summary: 'Redis goes away: its ChaosProxy resets open connections and refuses new ones',
    expected:
      'none: cached reads fall through to the database once the cache has no connection (fail fast, offline queue off)',
    needs: { redis: true },
  },
  'redis-hang': {
    summary: 'Redis hangs: its ChaosProxy swallows every byte (a SIGSTOP-like black hole)',
    expected:
      "none: cached reads give up on Redis after the cache's 50 ms timeout, and skip it once its breaker opens",
    needs: { redis: true },
  },
  'planned-switchover': {
    summary: 'clean stop of the primary, promote the most advanced standby (final)',
    expected:
      'none: writes on the wire at the stop are answered 57P01 (rolled back) and wait in the failover buffer for the new primary, as do writes arriving during the promotion; only a commit caught waiting for a standby fails (a lost connection, or E_OUTCOME_UNKNOWN). Target: none',
    needs: { localCluster: true, replicas: 1, final: true },
  },
  'primary-failover': {
    summary:
      'SIGKILL the primary, promote the most advanced standby; the pool finds it among its candidates (final)',
    expected:
      'writes on the wire at the kill fail (E_OUTCOME_UNKNOWN or a lost connection); writes arriving before the promotion fail with E_CIRCUIT_OPEN / E_ENDPOINT_DOWN; reads are unaffected',
    needs: { localCluster: true, replicas: 1, quorum: true, final: true },
  },
};

export function isScenarioName(name: string): name is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(name);
}

/** `--list`: one line per scenario, in the order `all` plays them. */
export function scenarioList(): string {
  const width = Math.max(...SCENARIOS.map((s) => s.length));
  return SCENARIOS.map((name) => `${name.padEnd(width)}  ${SCENARIO_INFO[name].summary}`).join(
    '\n',
  );
}
