/**
 * Cache identity: which data a pool reads (database, user, servers), resolved as pg resolves a
 * pool's settings. Differential for the mirror: the same settings through pg's
 * ConnectionParameters and through the mirror.
 */
import { createRequire } from 'node:module';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cacheIdentity,
  connectionIdentity,
  mirrorConnectionIdentity,
} from '../../../src/cache/identity.js';
import type { PgPoolLike } from '../../../src/pg-like.js';

const pools: pg.Pool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.end();
});

/** A real pg.Pool (it connects only when used, which these tests never do). */
function pool(config: pg.PoolConfig): PgPoolLike {
  const p = new pg.Pool(config);
  pools.push(p);
  return p as unknown as PgPoolLike;
}

const id = (...configs: pg.PoolConfig[]) => cacheIdentity(configs.map(pool));

describe('cacheIdentity', () => {
  it('is a short hash, with no host, database, user or password in it', () => {
    const identity = id({
      connectionString: 'postgres://alice:s3cret@db.example.com:6543/orders',
    });
    expect(identity).toMatch(/^@[A-Za-z0-9_-]{22}$/);
    for (const part of ['alice', 's3cret', 'example', '6543', 'orders']) {
      expect(identity).not.toContain(part);
    }
  });

  it('differs by database, user, host, port, startup options and binary', () => {
    const base = { host: 'db1', port: 5432, database: 'app', user: 'app' };
    const identities = [
      id(base),
      id({ ...base, database: 'other' }),
      id({ ...base, user: 'reporting' }),
      id({ ...base, host: 'db2' }),
      id({ ...base, port: 5433 }),
      id({ ...base, options: '-c search_path=tenant_1' }),
      id({ ...base, binary: true } as pg.PoolConfig),
    ];
    expect(new Set(identities).size).toBe(identities.length);
  });

  it('does not depend on the password', () => {
    const base = { host: 'db1', database: 'app', user: 'app' };
    expect(id({ ...base, password: 'a' })).toBe(id({ ...base, password: 'b' }));
    expect(id({ connectionString: 'postgres://app:a@db1/app' })).toBe(
      id({ connectionString: 'postgres://app:b@db1/app' }),
    );
  });

  it('names one place one way: a connection string and the same settings as fields', () => {
    expect(id({ connectionString: 'postgres://app@db1:5432/app' })).toBe(
      id({ host: 'db1', port: 5432, database: 'app', user: 'app' }),
    );
    // pg's defaults: port 5432; the database named after the user.
    expect(id({ host: 'db1', user: 'app' })).toBe(
      id({ host: 'db1', port: 5432, database: 'app', user: 'app' }),
    );
  });

  it('covers the server set: replicas count, their order and repeats do not', () => {
    const primary = { host: 'p', database: 'app', user: 'app' };
    const r1 = { ...primary, host: 'r1' };
    const r2 = { ...primary, host: 'r2' };
    expect(id(primary, r1, r2)).toBe(id(primary, r2, r1));
    expect(id(primary, r1)).toBe(id(primary, r1, { ...r1 }));
    expect(id(primary, r1)).not.toBe(id(primary, r2));
    expect(id(primary)).not.toBe(id(primary, r1));
  });

  it('gives one identity to pools it cannot see into (no pg options)', () => {
    const opaque = { ...pool({}), options: undefined } as PgPoolLike;
    expect(cacheIdentity([opaque])).toMatch(/^@[A-Za-z0-9_-]{22}$/);
    expect(cacheIdentity([opaque])).not.toBe(id({}));
  });
});

describe('connection settings, as pg resolves them', () => {
  const ConnectionParameters = createRequire(import.meta.url)(
    'pg/lib/connection-parameters.js',
  ) as new (
    c: object,
  ) => Record<string, unknown>;
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGOPTIONS']) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  const CONFIGS: Array<[string, Record<string, unknown>]> = [
    ['nothing (pg defaults)', {}],
    ['fields', { host: 'h', port: 6000, database: 'd', user: 'u', options: '-c x=1' }],
    ['a port as a string', { host: 'h', port: '6001' }],
    ['a URL', { connectionString: 'postgresql://u:pw@h:6002/d' }],
    ['a URL without port or database', { connectionString: 'postgres://u@h' }],
    ['a URL over fields', { connectionString: 'postgres://u@h:1/d', host: 'x', database: 'y' }],
    ['a URL with an IPv6 host', { connectionString: 'postgres://u@[::1]:5433/d' }],
    ['a URL with a socket host param', { connectionString: 'postgres://u@/d?host=/var/run/pg' }],
    ['a URL with percent-encoding', { connectionString: 'postgres://us%40r@h/d%20b' }],
    ['a socket URL', { connectionString: 'socket://u:pw@/var/run/pg?db=d' }],
    ['a socket directory and a database', { connectionString: '/var/run/postgresql mydb' }],
    ['binary', { host: 'h', binary: true }],
  ];

  for (const [name, config] of CONFIGS) {
    it(`mirror agrees with pg for ${name}`, () => {
      const p = new ConnectionParameters(config);
      const expected = {
        host: String(p.host ?? ''),
        port: String(p.port ?? ''),
        database: String(p.database ?? ''),
        user: String(p.user ?? ''),
        options: String(p.options ?? ''),
        binary: Boolean(p.binary),
      };
      expect(mirrorConnectionIdentity(config)).toEqual(expected);
      expect(connectionIdentity(config)).toEqual(expected);
    });
  }

  it('mirror agrees with pg on PG* environment variables', () => {
    process.env.PGHOST = 'envhost';
    process.env.PGPORT = '7000';
    process.env.PGUSER = 'envuser';
    process.env.PGDATABASE = 'envdb';
    process.env.PGOPTIONS = '-c search_path=s';
    for (const config of [{}, { host: 'h' }, { connectionString: 'postgres://h2/d2' }]) {
      expect(mirrorConnectionIdentity(config)).toEqual(connectionIdentity(config));
    }
    expect(connectionIdentity({}).host).toBe('envhost');
  });
});
