import { defineConfig } from 'tsup';

const library = {
  index: 'src/index.ts',
  // The subpath serves the testing kit and the drill built on it; the kit does not import the drill.
  'testing/index': 'src/drill/testing-subpath.ts',
  // Integrations: kysely is an optional peer (external); typeorm is never imported.
  'kysely/index': 'src/integrations/kysely/index.ts',
  'typeorm/index': 'src/integrations/typeorm/index.ts',
};

export default defineConfig([
  {
    entry: library,
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    splitting: false,
  },
  {
    entry: library,
    format: ['cjs'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    splitting: false,
    // p-retry is ESM-only; the CommonJS build carries its own copy so `require()` works on every
    // Node 20 minor, not only those with require(esm).
    noExternal: ['p-retry', 'is-network-error'],
  },
  {
    // The `resilient-pool` bin: ESM only (the bin entry points at it), and no declarations, since
    // nothing imports it. It reads ../../package.json for --version, as src/cli/index.ts does.
    entry: { 'cli/index': 'src/cli/index.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    target: 'node20',
    splitting: false,
  },
]);
