/** What the health monitor knows of an endpoint: shared by the monitor and the endpoint. */

export type HealthState = 'unknown' | 'healthy' | 'lagging' | 'ejected';

/** What the monitor knows of one endpoint; shown in stats(). */
export interface EndpointHealth {
  state: HealthState;
  /** pg_is_in_recovery() at the last probe: a hot standby (null: not probed yet). */
  inRecovery: boolean | null;
  /** Bytes of WAL the replica has not replayed yet (null: unknown). */
  lagBytes: number | null;
  /** How far behind the replica's replay is, in ms; 0 when it has replayed everything. */
  lagMs: number | null;
  /** Times ejected since the last long healthy stretch; sets the re-admission backoff. */
  ejections: number;
  /** Why the endpoint was last ejected or held back. */
  reason: string | null;
}
