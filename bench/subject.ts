/**
 * The code under measurement: the BUILT library in dist/, as users run it. Running src/ through
 * tsx would add esbuild's keepNames wrapper to every closure the hot path creates (measured at
 * about a quarter of the in-process overhead), which the published build does not have.
 * `npm run bench` builds first.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = new URL('../dist/index.js', import.meta.url);
if (!existsSync(fileURLToPath(dist))) {
  throw new Error('bench: dist/ is missing; run `npm run build` first (npm run bench does)');
}
const library = (await import(dist.href)) as typeof import('../src/index.js');

export const ResilientPool = library.ResilientPool;
export const cacheInfo = library.cacheInfo;
export type ResilientPool = import('../src/index.js').ResilientPool;
