/**
 * One health probe of one endpoint: a cheap query on a connection of its own (never a permit or
 * a pool slot of user traffic), bounded by its own timeout.
 */

import { adopt, disown, type Lease } from '../endpoint/lease.js';
import type { PgClientLike, PgPoolLike, QueryResultLike } from '../pg-like.js';
import { parseLsn } from './lsn.js';

const IGNORE_LOSS: Lease = { connectionLost: () => {} };

/**
 * A probe that got no answer in time: classified as a connection failure (ETIMEDOUT), the sign of
 * a frozen server or a black-holed network.
 */
function probeTimeout(timeoutMs: number): Error {
  return Object.assign(new Error(`health probe did not answer within ${timeoutMs} ms`), {
    code: 'ETIMEDOUT',
  });
}

/** What a probe learns. */
export interface ProbeResult {
  /** pg_is_in_recovery(): a standby (or a demoted primary). */
  inRecovery: boolean;
  /** The primary's current WAL position, or the standby's replayed position. */
  lsn: bigint | undefined;
  /** A standby's received WAL position. */
  receiveLsn: bigint | undefined;
  /** Time since the standby replayed its last commit, in ms (null on a primary). */
  replayAgeMs: number | null;
}

/**
 * Works on a primary and a standby alike: CASE evaluates only the branch taken, and
 * pg_current_wal_lsn() would fail during recovery.
 */
export const PROBE_SQL = `SELECT pg_is_in_recovery() AS in_recovery,
  (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 AS replay_age_ms`;

interface ProbeRow {
  in_recovery: boolean;
  lsn: string | null;
  receive_lsn: string | null;
  replay_age_ms: number | null;
}

type ClientConstructor = new (
  config: object,
) => PgClientLike & {
  connect(): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
};

/**
 * Runs probes for one endpoint. With a pg.Pool it keeps one dedicated client (built from the
 * pool's own `Client` and `options`), reconnected after a failure; any other pool-like gets a
 * client of the pool for each probe.
 */
export class Prober {
  private client: (PgClientLike & { end(): Promise<void> }) | undefined;
  private readonly Client: ClientConstructor | undefined;

  constructor(
    private readonly pool: PgPoolLike,
    private readonly timeoutMs: number,
  ) {
    const ctor = (pool as { Client?: unknown }).Client;
    this.Client =
      typeof ctor === 'function' && typeof pool.options === 'object'
        ? (ctor as ClientConstructor)
        : undefined;
  }

  /** Resolves with the result, or rejects (an error, or no answer within the timeout). */
  probe(): Promise<ProbeResult> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A connection that did not answer is dropped: the next probe starts afresh.
        this.reset();
        reject(probeTimeout(this.timeoutMs));
      }, this.timeoutMs);
      // A probe never keeps the process alive (a pool-like whose client hangs past end()).
      timer.unref();
    });
    return Promise.race([this.run(), timeout]).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.reset();
  }

  private async run(): Promise<ProbeResult> {
    const result = await (this.Client ? this.viaOwnClient() : this.viaPool());
    const row = result.rows[0] as ProbeRow | undefined;
    if (row === undefined) throw new Error('health probe returned no row');
    return {
      inRecovery: row.in_recovery === true,
      lsn: parseLsn(row.lsn),
      receiveLsn: parseLsn(row.receive_lsn),
      replayAgeMs: typeof row.replay_age_ms === 'number' ? row.replay_age_ms : null,
    };
  }

  private async viaOwnClient(): Promise<QueryResultLike> {
    if (this.client === undefined) {
      const Client = this.Client as ClientConstructor;
      const options = this.pool.options as { password?: unknown };
      const client = new Client({
        ...options,
        // pg-pool keeps the password non-enumerable (so it is never logged): copy it by name.
        ...(options.password === undefined ? {} : { password: options.password }),
        connectionTimeoutMillis: this.timeoutMs,
        application_name: 'resilient-pool health probe',
      });
      // A dropped probe connection is reported by the next probe, never as a process crash.
      client.on('error', () => this.reset());
      this.client = client;
      try {
        await client.connect();
      } catch (err) {
        this.reset();
        throw err;
      }
    }
    try {
      return (await this.client.query(PROBE_SQL)) as QueryResultLike;
    } catch (err) {
      this.reset();
      throw err;
    }
  }

  private async viaPool(): Promise<QueryResultLike> {
    const client = await this.pool.connect();
    // The probe's failure is reported by its query; the listener keeps it from crashing anything.
    adopt(client, IGNORE_LOSS);
    try {
      const result = (await client.query(PROBE_SQL)) as QueryResultLike;
      disown(client);
      client.release();
      return result;
    } catch (err) {
      disown(client);
      client.release(err as Error);
      throw err;
    }
  }

  private reset(): void {
    const client = this.client;
    this.client = undefined;
    client?.end().catch(() => {});
  }
}
