/**
 * PgBouncer in front of one replica, in transaction mode (the mode that pools): the bench starts
 * one per replica, and the application spreads its reads over them, as an application without a
 * routing library does when each replica has its own PgBouncer.
 */
import { freePort } from '../../src/testing/free-port.js';
import type { BenchNode } from '../server.js';
import { ConfigDir, PeerProcess, type RunAs } from './peer-process.js';

export interface PgbouncerOptions {
  binary: string;
  node: BenchNode;
  user: RunAs;
  /** Server connections it may open to the replica. */
  poolSize: number;
}

/** PgBouncer's userlist.txt quotes with double quotes, doubled inside. */
const quote = (s: string): string => `"${s.replaceAll('"', '""')}"`;

export async function startPgbouncer(options: PgbouncerOptions): Promise<PeerProcess> {
  const { binary, node, user, poolSize } = options;
  const dir = await ConfigDir.create('pgbouncer', user);
  const port = await freePort();
  // The plain password lets PgBouncer answer the client's SCRAM exchange and log in to the
  // server with SCRAM itself.
  const authFile = await dir.write('userlist.txt', `${quote(node.user)} ${quote(node.password)}\n`);
  const ini = [
    '[databases]',
    `${node.database} = host=${node.host} port=${node.port} dbname=${node.database}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${authFile}`,
    'pool_mode = transaction',
    `default_pool_size = ${poolSize}`,
    'min_pool_size = 0',
    'reserve_pool_size = 0',
    'max_client_conn = 200',
    'server_tls_sslmode = disable',
    'log_connections = 0',
    'log_disconnections = 0',
    'stats_period = 3600',
    '',
  ].join('\n');
  const iniFile = await dir.write('pgbouncer.ini', ini);
  const proc = new PeerProcess({
    name: `PgBouncer (${node.name})`,
    binary,
    args: [iniFile],
    dir,
    user,
    port,
    login: { user: node.user, password: node.password, database: node.database },
    // SIGTERM: immediate shutdown (SIGINT would wait for clients to leave).
    stopSignal: 'SIGTERM',
  });
  await proc.start();
  return proc;
}
