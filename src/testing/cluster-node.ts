import pg from 'pg';
import { type PostgresProcess, STOP_TIMEOUT_MS } from './postgres-process.js';

/** Nodes listen on loopback only. */
export const HOST = '127.0.0.1';

/** One PostgreSQL server of a `LocalCluster`, with real process control. */
export interface ClusterNode {
  /** `primary`, `replica-1`, `replica-2`, ... */
  readonly name: string;
  /**
   * The node's current role. `promote()` turns a replica into the primary and the old primary
   * into a 'former-primary', which stays down: it cannot rejoin without pg_rewind, which the
   * embedded binaries do not ship, and starting it would make two writable primaries.
   */
  readonly role: NodeRole;
  /** Always `127.0.0.1`: nodes listen on loopback only. */
  readonly host: string;
  /** Fixed for the life of the cluster, so `start()` after `kill()` comes back where it was. */
  readonly port: number;
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** Pid of the postmaster, undefined while the node is down. */
  readonly pid: number | undefined;
  /**
   * A pool connected to this node as the `postgres` superuser; `config` overrides the defaults.
   * It has an 'error' listener that ignores errors of idle clients, since nodes are killed on
   * purpose; add your own to see them. `cluster.stop()` ends pools still open.
   */
  createPool(config?: pg.PoolConfig): pg.Pool;
  /** SIGKILL the postmaster, like a crash; resolves once it and its backends have exited. */
  kill(): Promise<void>;
  /**
   * Fast shutdown (SIGINT); resolves once the postmaster has exited. Rejects if that takes more
   * than 10 s, after killing it.
   */
  stop(): Promise<void>;
  /** Starts the node again on the same port and data directory; resolves once it answers. */
  start(): Promise<void>;
  /**
   * SIGSTOP the postmaster and all its backends: new connections and queries on open
   * connections hang (nothing is refused) until `resume()`.
   */
  pause(): void;
  /** SIGCONT what `pause()` stopped; a no-op when not paused. */
  resume(): void;
  /** True from a successful start until the postmaster exits; a paused node is running. */
  isRunning(): boolean;
}

export type NodeRole = 'primary' | 'replica' | 'former-primary';

/** A node of the local cluster: a {@link PostgresProcess} plus how to connect to it. */
export class LocalClusterNode implements ClusterNode {
  readonly host = HOST;
  readonly #server: PostgresProcess;
  readonly #password: string;
  readonly #pools: Set<pg.Pool>;
  #role: NodeRole;

  constructor(server: PostgresProcess, role: NodeRole, password: string, pools: Set<pg.Pool>) {
    this.#server = server;
    this.#role = role;
    // Private, so that logging or inspecting a node does not print the password.
    this.#password = password;
    this.#pools = pools;
  }

  get name(): string {
    return this.#server.name;
  }

  get role(): NodeRole {
    return this.#role;
  }

  /** Changes the role after a promotion (cluster-internal). */
  setRole(role: NodeRole): void {
    this.#role = role;
  }

  /** The primary_conninfo a standby uses to stream from this node. */
  streamingConninfo(applicationName: string): string {
    return (
      `host=${HOST} port=${this.port} user=postgres password=${this.#password} ` +
      `application_name=${applicationName}`
    );
  }

  get port(): number {
    return this.#server.port;
  }

  get url(): string {
    return `postgres://postgres:${encodeURIComponent(this.#password)}@${HOST}:${this.port}/postgres`;
  }

  get pid(): number | undefined {
    return this.#server.pid;
  }

  /** Connection settings for internal clients (readiness, replication checks). */
  get connection(): pg.ClientConfig {
    return {
      host: HOST,
      port: this.port,
      user: 'postgres',
      password: this.#password,
      database: 'postgres',
    };
  }

  createPool(config: pg.PoolConfig = {}): pg.Pool {
    const pool = new pg.Pool({ ...this.connection, ...config });
    // Killing and pausing nodes is the point of this cluster; an idle client losing its
    // connection must not become an unhandled 'error' event that ends the test process.
    pool.on('error', () => {});
    this.#pools.add(pool);
    return pool;
  }

  kill(): Promise<void> {
    return this.#server.kill();
  }

  async stop(): Promise<void> {
    if (!(await this.#server.stop(STOP_TIMEOUT_MS))) {
      throw new Error(
        `${this.name}: fast shutdown did not finish within ${STOP_TIMEOUT_MS} ms; ` +
          'the server was killed with SIGKILL instead',
      );
    }
  }

  start(): Promise<void> {
    if (this.#role === 'former-primary') {
      return Promise.reject(
        new Error(
          `${this.name} was the primary before a promotion; it cannot rejoin without pg_rewind, ` +
            'and starting it would make a second writable primary',
        ),
      );
    }
    return this.#server.start();
  }

  pause(): void {
    this.#server.pause();
  }

  resume(): void {
    this.#server.resume();
  }

  isRunning(): boolean {
    return this.#server.isRunning();
  }
}
