/**
 * Faults made with superuser SQL on the local cluster's nodes, over connections of their own
 * that bypass the proxies: replay paused on a standby (replication lag), every client backend
 * terminated, and the primary's connection slots exhausted (53300).
 */
import pg from 'pg';
import { pick } from '../rng.js';
import { currentPrimary, type DrillNode, type DrillTargets, standbys } from '../targets.js';
import { type PlannedFault, secondsOf, serverOf, withClient } from './fault.js';

/**
 * Replay paused on a standby: it keeps receiving WAL and answering reads, from an older and
 * older snapshot. Held long enough for the lag to pass the pool's bound with room to spare.
 */
export function replicaLag(targets: DrillTargets, rng: () => number, holdMs: number) {
  const replicas = standbys(targets).filter((r) => r.server !== undefined);
  if (replicas.length === 0) return undefined;
  const node = pick(rng, replicas);
  const minHoldMs = 3 * targets.maxLagMs + 2_000;
  const connection = targets.directConnection(node);
  return {
    name: 'replica-lag',
    target: node.name,
    endpoint: node.name,
    description: `pause WAL replay on ${node.name} for ${secondsOf(Math.max(holdMs, minHoldMs))} (lag bound ${targets.maxLagMs} ms)`,
    minHoldMs,
    inject: async () => {
      await withClient(connection, (c) => c.query('SELECT pg_wal_replay_pause()'));
    },
    heal: async () => {
      await withClient(connection, (c) => c.query('SELECT pg_wal_replay_resume()'));
    },
  } satisfies PlannedFault;
}

/** Nodes whose server runs (a killed or former primary cannot be asked anything). */
function runningNodes(targets: DrillTargets): DrillNode[] {
  return targets.nodes.filter((n) => n.server?.isRunning() === true);
}

/** Every client backend on every running node is terminated, the drill's own check excepted. */
export function backendsTerminated(targets: DrillTargets) {
  const nodes = runningNodes(targets);
  if (nodes.length === 0) return undefined;
  return {
    name: 'backends-terminated',
    target: 'every node',
    endpoint: 'primary',
    description: 'pg_terminate_backend() every client backend on every node',
    instant: true,
    inject: async (context) => {
      const counts = await Promise.all(
        nodes.map((node) =>
          withClient(targets.directConnection(node), async (c) => {
            const { rows } = await c.query<{ n: number }>(
              `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
               WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
            );
            return `${node.name} ${rows[0]?.n ?? 0}`;
          }),
        ),
      );
      context.say(`backends-terminated: ${counts.join(', ')}`);
    },
    heal: async () => {},
  } satisfies PlannedFault;
}

/** The application_name of the connections that fill the primary's slots. */
const FILLER = 'resilient-pool-drill-filler';

/** Whether an error is PostgreSQL's "sorry, too many clients already" (class 53). */
const isTooManyClients = (err: unknown) => (err as { code?: unknown } | null)?.code === '53300';

/** How often the pool's idle backends are ended while the slots are full. */
const SWEEP_MS = 250;

/**
 * The primary's max_connections filled by idle connections of the drill's own, then the pool's
 * idle backends ended, again every 250 ms while the fault is held (as an aggressive idle-session
 * timeout would): each connection the pool gives back is gone, so it has to open new ones, and
 * every attempt gets 53300 until the heal closes the fillers. Statements running are left alone,
 * so what the scenario shows is the refusal alone.
 */
export function tooManyConnections(targets: DrillTargets) {
  const node = currentPrimary(targets);
  if (node.server === undefined || !serverOf(node).isRunning()) return undefined;
  const connection = { ...targets.directConnection(node), application_name: FILLER };
  const fillers: pg.Client[] = [];
  let sweeper: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> = Promise.resolve();
  let ended = 0;
  const open = async (): Promise<boolean> => {
    const client = new pg.Client(connection);
    client.on('error', () => {});
    try {
      await client.connect();
      fillers.push(client);
      return true;
    } catch (err) {
      await client.end().catch(() => {});
      if (isTooManyClients(err)) return false;
      throw err;
    }
  };
  /** Opens fillers, 8 at a time, until the server refuses one (or `limit` are open). */
  const fill = async (limit: number): Promise<boolean> => {
    while (fillers.length <= limit) {
      const opened = await Promise.all(Array.from({ length: 8 }, open));
      if (opened.includes(false)) return true;
    }
    return false;
  };
  /**
   * Ends the pool's idle backends, then takes the slots they freed before the pool can: the
   * fillers connect at once, the pool only when a caller needs a connection.
   */
  const sweep = async (control: pg.Client, limit: number) => {
    const { rows } = await control.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND state = 'idle' AND application_name <> $1`,
      [FILLER],
    );
    const n = rows[0]?.n ?? 0;
    ended += n;
    if (n > 0) await fill(limit);
  };
  return {
    name: 'too-many-connections',
    target: node.name,
    endpoint: 'primary',
    description: `fill the primary's (${node.name}) max_connections, end the pool's idle backends every ${SWEEP_MS} ms`,
    inject: async (context) => {
      // The control connection first: once the slots are full, nothing else gets in.
      const control = new pg.Client(connection);
      control.on('error', () => {});
      await control.connect();
      fillers.push(control);
      const { rows } = await control.query<{ max: number }>(
        "SELECT current_setting('max_connections')::int AS max",
      );
      const limit = rows[0]?.max ?? 100;
      const full = await fill(limit);
      await sweep(control, limit);
      context.say(
        `too-many-connections: ${fillers.length} connections hold the slots${full ? '' : ' (the server never refused one)'}; ${ended} idle backends of the pool ended`,
      );
      let busy = false;
      sweeper = setInterval(() => {
        // One sweep at a time (a slow one skips a turn); a failed one (the control connection
        // lost) ends the sweeps.
        if (busy) return;
        busy = true;
        sweeping = sweep(control, limit)
          .catch(() => clearInterval(sweeper))
          .finally(() => {
            busy = false;
          });
      }, SWEEP_MS);
    },
    heal: async (context) => {
      clearInterval(sweeper);
      await sweeping;
      await Promise.all(fillers.splice(0).map((c) => c.end().catch(() => {})));
      context.say(`too-many-connections: ${ended} idle backends of the pool ended in all`);
    },
  } satisfies PlannedFault;
}
