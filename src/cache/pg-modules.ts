/**
 * node-postgres' own modules, loaded on first use. The cache builds its keys from parameters as
 * pg serialises them (lib/utils.js) and scopes them by the connection settings as pg resolves them
 * (lib/connection-parameters.js); asking pg itself is the only way to follow its defaults, its
 * environment variables and any change a later pg makes. pg is a peer dependency: it is required
 * lazily (so this library loads, and the cache works, where it cannot be resolved, e.g. inside a
 * bundle) and every caller has a mirror to fall back on.
 */
import { createRequire } from 'node:module';

/** pg's lib/utils.js, as far as the cache uses it. */
export interface PgUtils {
  /** What pg sends for a parameter: null, a string, or a Buffer (sent in binary format). */
  prepareValue(value: unknown): unknown;
}

/** pg's ConnectionParameters: the settings a Client connects with, defaults and env applied. */
export type PgConnectionParameters = new (
  config: Readonly<Record<string, unknown>>,
) => Readonly<Record<string, unknown>>;

let load: ((id: string) => unknown) | null | undefined;

/**
 * A require() that resolves from this module. Made from the module's own path: `__filename` in
 * the CommonJS build, `import.meta.url` in the ESM one (a bare `require` will not do: bundlers
 * replace it in ESM output with a stub that throws).
 */
function loader(): ((id: string) => unknown) | null {
  if (load !== undefined) return load;
  try {
    load = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
  } catch {
    load = null;
  }
  return load;
}

function required(id: string): unknown {
  try {
    return loader()?.(id);
  } catch {
    return undefined;
  }
}

let utils: PgUtils | null | undefined;
let connectionParameters: PgConnectionParameters | null | undefined;

/** pg's utils module, or null when pg cannot be loaded from here. Looked up once. */
export function pgUtils(): PgUtils | null {
  if (utils === undefined) {
    const mod = required('pg/lib/utils.js') as Partial<PgUtils> | undefined;
    utils = typeof mod?.prepareValue === 'function' ? (mod as PgUtils) : null;
  }
  return utils;
}

/** pg's ConnectionParameters class, or null when pg cannot be loaded from here. */
export function pgConnectionParameters(): PgConnectionParameters | null {
  if (connectionParameters === undefined) {
    const mod = required('pg/lib/connection-parameters.js');
    connectionParameters = typeof mod === 'function' ? (mod as PgConnectionParameters) : null;
  }
  return connectionParameters;
}
