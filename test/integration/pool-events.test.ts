/**
 * pg-pool's events through a ResilientPool, on the real cluster: the usual pg.Pool setup
 * `pool.on('connect', (client) => client.query('SET ...'))` takes effect on the connections of
 * every endpoint, whichever path takes them (query, read, write, connect, transaction), and a
 * listener whose statement fails breaks no call.
 */
import type pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type LoggerLike, ResilientPool } from '../../src/index.js';
import { useCluster } from '../support/cluster.js';

const handle = useCluster({ replicas: 2 });
const open: ResilientPool<pg.Pool>[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 5_000 })));
});

function makeDb(logger: LoggerLike | false = false): ResilientPool<pg.Pool> {
  const { primary, replicas } = handle.cluster;
  const db = new ResilientPool({
    primary: primary.createPool({ max: 3 }),
    replicas: replicas.map((r) => r.createPool({ max: 3 })),
    routing: { balancer: 'round-robin' },
    health: { enabled: false },
    logger,
  });
  open.push(db);
  return db;
}

const WHO = `SELECT current_setting('application_name') AS app, inet_server_port() AS port`;
type Who = { app: string; port: number };

describe('pool events on the real cluster', () => {
  it("on('connect', client => client.query('SET ...')) applies to the clients of every endpoint", async () => {
    const db = makeDb();
    const connected: string[] = [];
    db.on('connect', (client, endpoint) => {
      connected.push(endpoint);
      void client.query(`SET application_name = 'rp:${endpoint}'`);
    });
    const portOf: Record<string, number> = {
      primary: handle.cluster.primary.port,
      'replica-1': handle.cluster.replicas[0]!.port,
      'replica-2': handle.cluster.replicas[1]!.port,
    };
    const endpointAt = (port: number) => Object.keys(portOf).find((k) => portOf[k] === port);

    const answers: Who[] = [];
    answers.push((await db.query<Who>(WHO)).rows[0]!);
    answers.push((await db.write<Who>(WHO)).rows[0]!);
    for (let i = 0; i < 4; i++) answers.push((await db.read<Who>(WHO)).rows[0]!);
    answers.push(await db.transaction(async (tx) => (await tx.query<Who>(WHO)).rows[0]!));
    for (const role of ['read', 'write'] as const) {
      // Several at once, so that new connections are opened on each endpoint.
      const clients = await Promise.all([1, 2, 3].map(() => db.connect({ role })));
      for (const client of clients) {
        answers.push((await client.query<Who>(WHO)).rows[0]!);
        client.release();
      }
    }

    for (const answer of answers) {
      expect(answer.app, `the connection on port ${answer.port}`).toBe(
        `rp:${endpointAt(answer.port)}`,
      );
    }
    expect(new Set(answers.map((a) => endpointAt(a.port)))).toEqual(
      new Set(['primary', 'replica-1', 'replica-2']),
    );
    // One 'connect' per connection opened, each named after its endpoint.
    expect(connected.length).toBe(db.totalCount);
    expect(new Set(connected)).toEqual(new Set(['primary', 'replica-1', 'replica-2']));
  });

  it('acquire and release pair up for every call; remove is heard when a client is destroyed', async () => {
    const db = makeDb();
    const counts = { acquire: 0, release: 0, remove: 0 };
    db.on('acquire', () => counts.acquire++);
    db.on('release', () => counts.release++);
    db.on('remove', () => counts.remove++);
    await db.query('SELECT 1');
    await db.read('SELECT 1');
    await db.transaction(async (tx) => tx.query('SELECT 1'));
    const client = await db.connect();
    client.release(true);
    await vi.waitFor(() => expect(counts.remove).toBe(1));
    expect(counts.acquire).toBe(4);
    expect(counts.release).toBe(4);
  });

  it("a 'connect' listener whose statement fails breaks no call; its error is logged", async () => {
    const logger = { error: vi.fn(), warn: vi.fn(), info: vi.fn(), debug: vi.fn() };
    const db = makeDb(logger);
    db.on('connect', (client) => client.query('SET no_such_setting = 1'));
    await expect(db.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    await expect(db.read('SELECT 2 AS two')).resolves.toMatchObject({ rows: [{ two: 2 }] });
    await vi.waitFor(() => expect(logger.error).toHaveBeenCalled());
    expect(logger.error.mock.calls[0]?.[0]).toMatchObject({ event: 'connect' });
  });
});
