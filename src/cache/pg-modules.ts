/**
 * node-postgres' own modules, loaded on first use. The cache builds its keys from parameters as
 * pg serialises them (lib/utils.js) and scopes them by the connection settings as pg resolves them
 * (lib/connection-parameters.js); asking pg itself is the only way to follow its defaults, its
 * environment variables and any change a later pg makes. pg is a peer dependency: it is required
 * lazily (so this library loads, and the cache works, where it cannot be resolved, e.g. inside a
 * bundle) and every caller has a mirror to fall back on.
 */
import { optionalRequire } from '../optional-require.js';

/** pg's lib/utils.js, as far as the cache uses it. */
export interface PgUtils {
  /** What pg sends for a parameter: null, a string, or a Buffer (sent in binary format). */
  prepareValue(value: unknown): unknown;
}

/** pg's ConnectionParameters: the settings a Client connects with, defaults and env applied. */
export type PgConnectionParameters = new (
  config: Readonly<Record<string, unknown>>,
) => Readonly<Record<string, unknown>>;

let utils: PgUtils | null | undefined;
let connectionParameters: PgConnectionParameters | null | undefined;

/** pg's utils module, or null when pg cannot be loaded from here. Looked up once. */
export function pgUtils(): PgUtils | null {
  if (utils === undefined) {
    const mod = optionalRequire('pg/lib/utils.js') as Partial<PgUtils> | undefined;
    utils = typeof mod?.prepareValue === 'function' ? (mod as PgUtils) : null;
  }
  return utils;
}

/** pg's ConnectionParameters class, or null when pg cannot be loaded from here. */
export function pgConnectionParameters(): PgConnectionParameters | null {
  if (connectionParameters === undefined) {
    const mod = optionalRequire('pg/lib/connection-parameters.js');
    connectionParameters = typeof mod === 'function' ? (mod as PgConnectionParameters) : null;
  }
  return connectionParameters;
}
