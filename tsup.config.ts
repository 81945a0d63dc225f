import { defineConfig } from 'tsup';

const entry = {
  index: 'src/index.ts',
  'testing/index': 'src/testing/index.ts',
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
