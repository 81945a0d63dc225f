import { defineConfig } from 'tsup';

const entry = {
  index: 'src/index.ts',
  // The subpath serves the testing kit and the drill built on it; the kit does not import the drill.
  'testing/index': 'src/drill/testing-subpath.ts',
  'cli/index': 'src/cli/index.ts',
};

export default defineConfig([
  {
    entry,
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    splitting: false,
  },
  {
    entry,
    format: ['cjs'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    splitting: false,
    // p-retry is ESM-only; the CommonJS build carries its own copy so `require()` works on every
    // Node 20 minor, not only those with require(esm).
    noExternal: ['p-retry', 'is-network-error'],
  },
]);
