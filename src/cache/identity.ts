/**
 * Which data a pool reads, for cache keys: pools on different databases (or as different users,
 * or on different servers) must never serve each other's entries, even when they share a Redis
 * and a key prefix. The identity is a hash of, for every pool: host, port, database, user, the
 * startup `options` (a `-c search_path=...` there changes what a statement reads) and `binary`
 * (results in binary format parse differently). Replicas are part of it, in no particular order:
 * the set of servers a read may go to.
 *
 * Settings are resolved the way pg resolves them (its ConnectionParameters: the pool's options,
 * its connection string, PG* environment variables, pg's defaults), so a pool built from
 * `connectionString` and one built from fields name one identity when pg would connect them to
 * the same place. No password is read, and nothing but the hash leaves this module.
 */
import { createHash } from 'node:crypto';
import type { PgPoolLike } from '../pg-like.js';
import { pgConnectionParameters } from './pg-modules.js';

/** Where a pool connects, as far as its results depend on it. */
export interface ConnectionIdentity {
  host: string;
  port: string;
  database: string;
  user: string;
  options: string;
  binary: boolean;
}

/** What a pool without pg's `options` (a custom pool-like) contributes: it cannot be told apart. */
const OPAQUE = 'opaque';

/**
 * The identity of the endpoints a cache serves, as it appears in keys: `@` and 22 base64url
 * characters. Give every pool reads may reach (primary, or every primary candidate, and the
 * replicas); their order does not matter.
 *
 * @example
 * cacheIdentity([primaryPool, replicaPool]); // '@3q2-7wJd0cXGJ0bXeQ2cSg'
 */
export function cacheIdentity(pools: readonly PgPoolLike[]): string {
  const parts = new Set<string>();
  for (const pool of pools) {
    const options = pool.options as Readonly<Record<string, unknown>> | undefined;
    parts.add(
      typeof options === 'object' && options !== null
        ? JSON.stringify(connectionIdentity(options))
        : OPAQUE,
    );
  }
  const input = `identity1\u0000${JSON.stringify([...parts].sort())}`;
  return `@${createHash('sha256').update(input).digest('base64url').slice(0, 22)}`;
}

/** Where pg would connect with `options`: pg's own resolution, or the mirror without pg. */
export function connectionIdentity(options: Readonly<Record<string, unknown>>): ConnectionIdentity {
  const Parameters = pgConnectionParameters();
  if (Parameters !== null) {
    try {
      const p = new Parameters(options);
      return {
        host: text(p.host),
        port: text(p.port),
        database: text(p.database),
        user: text(p.user),
        options: text(p.options),
        binary: Boolean(p.binary),
      };
    } catch {
      // Settings pg refuses (its connect would fail the same way): resolved by the mirror.
    }
  }
  return mirrorConnectionIdentity(options);
}

function text(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}

/**
 * A mirror of pg 8's resolution, for when pg cannot be loaded: the connection string's settings
 * win over the fields, then the fields, then PG* variables, then pg's defaults.
 */
export function mirrorConnectionIdentity(
  options: Readonly<Record<string, unknown>>,
): ConnectionIdentity {
  let config: Record<string, unknown> = { ...options };
  if (typeof options.connectionString === 'string' && options.connectionString !== '') {
    config = { ...config, ...parseConnectionString(options.connectionString) };
  }
  const env = process.env;
  // pg's val(): a falsy setting falls through to the environment, then to the default.
  const val = (key: string, fallback: unknown) =>
    config[key] || env[`PG${key.toUpperCase()}`] || fallback;
  const user = val('user', process.platform === 'win32' ? env.USERNAME : env.USER);
  const database = val('database', undefined) ?? user;
  return {
    host: text(val('host', 'localhost')),
    port: text(Number.parseInt(String(val('port', 5432)), 10)),
    database: text(database),
    user: text(user),
    options: text(val('options', undefined)),
    binary: Boolean(val('binary', false)),
  };
}

/**
 * The settings in a connection string (pg-connection-string's forms: a URL, `socket:` URL, or a
 * socket directory followed by a database name). The password is never read. A string no form
 * fits is kept whole, as a hash, so it still tells its pool apart from others.
 */
function parseConnectionString(connectionString: string): Record<string, unknown> {
  if (connectionString.startsWith('/')) {
    const [host, database] = connectionString.split(' ');
    return { host, database };
  }
  let str = connectionString;
  if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(str)) {
    str = encodeURI(str).replace(/%25(\d\d)/g, '%$1');
  }
  // A URL with no host (`postgres://user@/db?host=/socket`) parses with a stand-in host.
  let url = parseUrl(str);
  const standIn = url === undefined;
  if (standIn) url = parseUrl(str.replace('@/', '@___DUMMY___/'));
  if (url === undefined) {
    const hash = createHash('sha256').update(connectionString).digest('base64url');
    return { host: `unparsed:${hash}` };
  }
  const hostname = standIn ? '' : url.hostname;
  const out: Record<string, unknown> = {};
  for (const [name, value] of url.searchParams) {
    if (name === 'host' || name === 'port' || name === 'user' || name === 'options') {
      out[name] = value;
    }
  }
  out.user = out.user || decodeURIComponent(url.username);
  if (url.protocol === 'socket:') {
    out.host = decodeURI(url.pathname);
    out.database = url.searchParams.get('db');
    return out;
  }
  out.host = out.host || decodeURIComponent(hostname.replace(/^\[(.+)\]$/, '$1'));
  out.port = out.port || url.port;
  const path = url.pathname.slice(1);
  out.database = path === '' ? null : decodeURI(path);
  return out;
}

function parseUrl(str: string): URL | undefined {
  try {
    return new URL(str, 'postgres://base');
  } catch {
    return undefined;
  }
}
