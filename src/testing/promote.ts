/**
 * The SQL side of a failover: promoting a standby and re-pointing the others at it.
 */
import pg from 'pg';

const TIMEOUT_MS = 30_000;

async function withClient<T>(
  connection: pg.ClientConfig,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    ...connection,
    connectionTimeoutMillis: 5_000,
    query_timeout: TIMEOUT_MS + 5_000,
  });
  // A dropped connection surfaces through the awaited calls.
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** `pg_promote(wait => true)`: returns once the standby left recovery and accepts writes. */
export async function promoteStandby(connection: pg.ClientConfig): Promise<void> {
  await withClient(connection, async (client) => {
    const { rows } = await client.query<{ promoted: boolean }>(
      'SELECT pg_promote(true, $1) AS promoted',
      [Math.floor(TIMEOUT_MS / 1000)],
    );
    if (rows[0]?.promoted !== true) {
      throw new Error(`promote: pg_promote() did not finish within ${TIMEOUT_MS} ms`);
    }
  });
}

/**
 * Points a standby at a new primary. primary_conninfo is reloadable (PostgreSQL 13+): the WAL
 * receiver restarts with it, and recovery_target_timeline = 'latest' (the default) follows the
 * promoted node's new timeline.
 */
export async function followNewPrimary(
  connection: pg.ClientConfig,
  conninfo: string,
): Promise<void> {
  await withClient(connection, async (client) => {
    await client.query(`ALTER SYSTEM SET primary_conninfo = ${pg.escapeLiteral(conninfo)}`);
    await client.query('SELECT pg_reload_conf()');
  });
}
