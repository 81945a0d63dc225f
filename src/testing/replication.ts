import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';

/** A server to ask about WAL positions. */
export interface ReplayTarget {
  readonly name: string;
  readonly connection: pg.ClientConfig;
}

const POLL_MS = 25;

function describe(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

/** One client per server for the whole wait, reopened after an error. */
class Asker {
  #client: pg.Client | undefined;
  lastState = 'not asked yet';

  constructor(readonly target: ReplayTarget) {}

  async query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[],
    timeoutMs: number,
  ): Promise<R | undefined> {
    try {
      if (this.#client === undefined) {
        const client = new pg.Client({
          ...this.target.connection,
          // Short per-call limits keep each poll, and so the whole wait, close to its deadline.
          connectionTimeoutMillis: Math.min(timeoutMs, 2_000),
          query_timeout: Math.min(timeoutMs, 2_000),
        });
        // Errors surface through the awaited calls; the listener only keeps a dropped idle
        // connection from becoming an unhandled 'error' event.
        client.on('error', () => {});
        this.#client = client;
        await client.connect();
      }
      const result = await this.#client.query<R>(text, values);
      return result.rows[0];
    } catch (err) {
      this.lastState = describe(err);
      this.close();
      return undefined;
    }
  }

  close(): void {
    // Not awaited: a connection to a paused server would hold the caller until its timeout.
    this.#client?.end().catch(() => {});
    this.#client = undefined;
  }
}

/**
 * Resolves when every replica has replayed the WAL the primary had written when the call began.
 * The primary's position is read once: later writes are not waited for.
 */
export async function waitForReplay(
  primary: ReplayTarget,
  replicas: readonly ReplayTarget[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const remaining = (): number => Math.max(deadline - Date.now(), 1);
  const primaryAsker = new Asker(primary);
  let target: string | undefined;
  try {
    while (target === undefined) {
      const row = await primaryAsker.query<{ lsn: string }>(
        'SELECT pg_current_wal_lsn()::text AS lsn',
        [],
        remaining(),
      );
      target = row?.lsn;
      if (target === undefined) {
        if (Date.now() >= deadline) {
          throw new Error(
            `waitForReplication: could not read the WAL position of ${primary.name} within ` +
              `${timeoutMs} ms: ${primaryAsker.lastState}`,
          );
        }
        await delay(POLL_MS);
      }
    }
  } finally {
    primaryAsker.close();
  }

  const pending = new Set(replicas.map((r) => new Asker(r)));
  try {
    for (;;) {
      await Promise.all(
        [...pending].map(async (asker) => {
          const row = await asker.query<{ done: boolean | null; lsn: string | null }>(
            'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done, pg_last_wal_replay_lsn()::text AS lsn',
            [target],
            remaining(),
          );
          if (row === undefined) return;
          if (row.done === true) {
            pending.delete(asker);
            asker.close();
          } else {
            // NULL means the server is not in recovery: it was never a standby, or was promoted.
            asker.lastState = row.lsn === null ? 'not a standby' : `replayed up to ${row.lsn}`;
          }
        }),
      );
      if (pending.size === 0) return;
      if (Date.now() >= deadline) {
        const states = [...pending].map((a) => `${a.target.name}: ${a.lastState}`).join('; ');
        throw new Error(
          `waitForReplication: replicas did not replay ${primary.name}'s WAL up to ${target} ` +
            `within ${timeoutMs} ms (${states})`,
        );
      }
      await delay(POLL_MS);
    }
  } finally {
    for (const asker of pending) asker.close();
  }
}
