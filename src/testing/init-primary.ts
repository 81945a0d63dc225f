import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The configuration the primary's data directory gets after initdb (see initdb.ts), before it is
 * copied to the replicas.
 */

/** Quotes a postgresql.conf value; numbers stay bare so units and booleans read naturally. */
export function confValue(value: string | number): string {
  return typeof value === 'number' ? String(value) : `'${value.replaceAll("'", "''")}'`;
}

/**
 * Settings every node starts with. The data directory is copied to the replicas after these are
 * written, so they are shared; only port and primary_conninfo differ, in postgresql.auto.conf.
 */
export async function writeBaseConf(
  dataDir: string,
  extra: Readonly<Record<string, string | number>>,
): Promise<void> {
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    // TCP only: no socket directory to create, own or keep under the 107-byte path limit.
    unix_socket_directories: '',
    wal_level: 'replica',
    max_wal_senders: 10,
    max_replication_slots: 10,
    // No replication slots, so keep enough WAL for a replica that was killed or paused for a
    // while to catch up when it comes back.
    wal_keep_size: '256MB',
    hot_standby: 'on',
    // A standby retries a lost primary every 5 s by default; fail-over tests want it sooner.
    wal_retrieve_retry_interval: '500ms',
    // These data directories are thrown away, so durability only costs time.
    fsync: 'off',
    full_page_writes: 'off',
    ...extra,
  };
  const lines = Object.entries(settings).map(([key, value]) => `${key} = ${confValue(value)}`);
  await appendFile(
    path.join(dataDir, 'postgresql.conf'),
    `\n# resilient-pool startLocalCluster\n${lines.join('\n')}\n`,
  );
}

/**
 * Makes sure streaming replication may log in from 127.0.0.1. initdb's default pg_hba.conf has
 * such a line today, but a default is not a promise, and without it every standby fails quietly.
 */
export async function ensureReplicationHba(dataDir: string): Promise<void> {
  const file = path.join(dataDir, 'pg_hba.conf');
  const text = await readFile(file, 'utf8');
  const allowed = text
    .split('\n')
    .some((line) => /^\s*host\s+replication\s+\S+\s+127\.0\.0\.1\/32\s/.test(line));
  if (!allowed) await appendFile(file, 'host replication all 127.0.0.1/32 scram-sha-256\n');
}
