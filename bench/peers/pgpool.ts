/**
 * pgpool-II in streaming-replication mode in front of the bench's primary and two replicas, with
 * read load balancing across the replicas only (primary weight 0) and per statement
 * (`statement_level_load_balance`), so that, like `db.read`, every SELECT picks a replica. One
 * child process per client connection (`num_init_children` = the client pool's size), each with a
 * cached connection to every backend (`max_pool = 1`). Health checks, delay checks and failover
 * are off: the bench measures the steady-state hop, not pgpool's failure handling.
 */
import type pg from 'pg';
import { freePort } from '../../src/testing/free-port.js';
import type { BenchTopology } from '../server.js';
import { ConfigDir, PeerProcess, type RunAs } from './peer-process.js';

export interface PgpoolOptions {
  binary: string;
  topology: BenchTopology;
  user: RunAs;
  /** Client connections it serves at once (one pgpool child each). */
  children: number;
}

export interface StartedPgpool {
  process: PeerProcess;
  port: number;
  /**
   * SELECTs counted per backend by pgpool (SHOW POOL_NODES select_cnt), `name=count ...`, asked
   * through `pool`: a connection of its own could wait for a free pgpool child for ever.
   */
  selectCounts(pool: pg.Pool): Promise<string>;
}

const conf = (value: string | number): string =>
  typeof value === 'number' ? String(value) : `'${value.replaceAll("'", "''")}'`;

export async function startPgpool(options: PgpoolOptions): Promise<StartedPgpool> {
  const { binary, topology, user, children } = options;
  const dir = await ConfigDir.create('pgpool', user);
  const port = await freePort();
  const pcpPort = await freePort();
  const nodes = [topology.primary, ...topology.replicas.slice(0, 2)];
  const settings: Record<string, string | number> = {
    backend_clustering_mode: 'streaming_replication',
    listen_addresses: '127.0.0.1',
    port,
    socket_dir: dir.path,
    pcp_listen_addresses: '',
    pcp_port: pcpPort,
    pcp_socket_dir: dir.path,
    wd_ipc_socket_dir: dir.path,
    pid_file_name: `${dir.path}/pgpool.pid`,
    logdir: dir.path,
    log_destination: 'stderr',
    log_min_messages: 'warning',
    enable_pool_hba: 'off',
    pool_passwd: 'pool_passwd',
    num_init_children: children,
    max_pool: 1,
    reserved_connections: 0,
    child_life_time: 0,
    child_max_connections: 0,
    connection_life_time: 0,
    client_idle_limit: 0,
    connection_cache: 'on',
    load_balance_mode: 'on',
    statement_level_load_balance: 'on',
    // Primary identification uses these even with the delay check off; the password comes
    // from pool_passwd.
    sr_check_period: 0,
    sr_check_user: topology.primary.user,
    sr_check_password: '',
    sr_check_database: topology.primary.database,
    health_check_period: 0,
    failover_on_backend_error: 'off',
    search_primary_node_timeout: 10,
    use_watchdog: 'off',
    memory_cache_enabled: 'off',
  };
  for (const [i, node] of nodes.entries()) {
    settings[`backend_hostname${i}`] = node.host;
    settings[`backend_port${i}`] = node.port;
    // Reads go to the replicas only, as db.read sends them.
    settings[`backend_weight${i}`] = i === 0 ? 0 : 1;
    settings[`backend_flag${i}`] = 'DISALLOW_TO_FAILOVER';
    settings[`backend_application_name${i}`] = node.name;
  }
  const confFile = await dir.write(
    'pgpool.conf',
    `${Object.entries(settings)
      .map(([k, v]) => `${k} = ${conf(v)}`)
      .join('\n')}\n`,
  );
  // pgpool answers the client's SCRAM exchange itself and logs in to every backend on its
  // behalf, so it must know the password: TEXT<password> is its plain-text form.
  const logins = new Map(nodes.map((n) => [n.user, n.password]));
  await dir.write('pool_passwd', `${[...logins].map(([u, p]) => `${u}:TEXT${p}`).join('\n')}\n`);
  const pcpFile = await dir.write('pcp.conf', '');
  const hbaFile = await dir.write('pool_hba.conf', '');
  const login = {
    user: topology.primary.user,
    password: topology.primary.password,
    database: topology.primary.database,
  };
  const proc = new PeerProcess({
    name: 'pgpool-II',
    binary,
    // -n: stay in the foreground; -D: forget any saved node status.
    args: ['-n', '-D', '-f', confFile, '-F', pcpFile, '-a', hbaFile],
    dir,
    user,
    port,
    login,
    stopSignal: 'SIGINT',
  });
  await proc.start();
  const names = nodes.map((n) => n.name);
  return {
    process: proc,
    port,
    selectCounts: async (pool) => {
      const { rows } = await pool.query<{ node_id: string; select_cnt: string; role: string }>(
        'SHOW POOL_NODES',
      );
      return rows
        .map((r) => `${names[Number(r.node_id)] ?? r.node_id}(${r.role})=${r.select_cnt}`)
        .join(' ');
    },
  };
}
