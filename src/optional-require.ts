/**
 * Loading of optional peer dependencies (pg's own modules for the cache, @opentelemetry/api for
 * metrics and traces) on first use, so the library loads, and everything that does not need them
 * works, where they cannot be resolved: not installed, or inside a bundle.
 */
import { createRequire } from 'node:module';

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

/**
 * The module `id` as require() gives it, or undefined when it cannot be loaded from here. The
 * caller checks the shape of what it gets: a module of the same name but another major version
 * may be found.
 */
export function optionalRequire(id: string): unknown {
  try {
    return loader()?.(id);
  } catch {
    return undefined;
  }
}
