/**
 * kysely and typeorm are optional peers: only their own subpaths (src/integrations/<name>/) may
 * import them, and nothing else in src/ may import src/integrations/, so the main entry loads
 * without either installed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every module specifier a file imports, exports from, or import()s, with `import type` marked. */
function specifiers(file: string): Array<{ from: string; typeOnly: boolean }> {
  const text = readFileSync(file, 'utf8');
  return [
    ...[...text.matchAll(/^\s*(import|export)(\s+type)?\s[^;]*?\sfrom\s+'([^']+)'/gms)].map(
      (m) => ({ from: m[3] as string, typeOnly: m[2] !== undefined }),
    ),
    ...[...text.matchAll(/^\s*import\s+'([^']+)'/gm)].map((m) => ({
      from: m[1] as string,
      typeOnly: false,
    })),
    ...[...text.matchAll(/import\(\s*'([^']+)'\s*\)/g)].map((m) => ({
      from: m[1] as string,
      typeOnly: false,
    })),
  ];
}

const files = sourceFiles(SRC).map((file) => ({
  rel: path.relative(SRC, file),
  imports: specifiers(file),
}));

const OPTIONAL_PEERS = ['kysely', 'typeorm', 'pg-boss'];

describe('optional peers of the integrations', () => {
  it('are imported only by their own subpath', () => {
    // The scan sees the Kysely subpath's own imports (so it would see anyone else's).
    const kysely = files.filter(({ imports }) => imports.some((i) => i.from === 'kysely'));
    expect(kysely.map(({ rel }) => rel.split(path.sep)[1])).toContain('kysely');
    const offenders = files.flatMap(({ rel, imports }) =>
      imports
        .filter((i) => OPTIONAL_PEERS.some((p) => i.from === p || i.from.startsWith(`${p}/`)))
        .filter((i) => !rel.startsWith(`integrations${path.sep}${i.from.split('/')[0]}${path.sep}`))
        .map((i) => `${rel} -> ${i.from}`),
    );
    expect(offenders).toEqual([]);
  });

  it('leave src/integrations/ unimported by the rest of src/', () => {
    const offenders = files
      .filter(({ rel }) => !rel.startsWith(`integrations${path.sep}`))
      .flatMap(({ rel, imports }) =>
        imports
          .filter((i) => i.from.startsWith('.') && i.from.includes('integrations/'))
          .map((i) => `${rel} -> ${i.from}`),
      );
    expect(offenders).toEqual([]);
  });

  it('keep the TypeORM subpath free of typeorm at run time', () => {
    const typeorm = files.filter(({ rel }) => rel.startsWith(`integrations${path.sep}typeorm`));
    expect(typeorm.length).toBeGreaterThan(0);
    const runtime = typeorm.flatMap(({ rel, imports }) =>
      imports
        .filter((i) => !i.typeOnly && !i.from.startsWith('.'))
        .map((i) => `${rel} -> ${i.from}`),
    );
    expect(runtime).toEqual([]);
  });

  it('import only types from the pool, so no second ResilientPool is bundled', () => {
    const offenders = files
      .filter(({ rel }) => rel.startsWith(`integrations${path.sep}`))
      .flatMap(({ rel, imports }) =>
        imports
          .filter((i) => !i.typeOnly && /\/(pool|endpoint|errors)[/.]/.test(i.from))
          .map((i) => `${rel} -> ${i.from}`),
      );
    expect(offenders).toEqual([]);
  });
});
