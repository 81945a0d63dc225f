/**
 * The shape of src/: no import cycles (type-only imports included: a cycle of types is still two
 * files that cannot be understood apart), and layers that point one way. A new file that breaks
 * either fails here with the path that does.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Relative imports and re-exports of a file, resolved to src-relative paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'/gms),
    ...text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g),
  ].map((m) => m[1] as string);
  return specifiers.map((s) =>
    path.relative(SRC, path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts'))),
  );
}

const graph = new Map(
  sourceFiles(SRC).map((file) => [path.relative(SRC, file), importsOf(file)] as const),
);

/** Every cycle found by a depth-first search, each as the list of files around it. */
function cycles(): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

/** Imports of files under `from` that reach into `to`. */
function importsBetween(from: string, to: string): string[] {
  return [...graph].flatMap(([file, imports]) =>
    file.startsWith(from)
      ? imports.filter((i) => i.startsWith(to)).map((i) => `${file} -> ${i}`)
      : [],
  );
}

describe('the import graph of src/', () => {
  it('resolves every relative import to a file', () => {
    const missing = [...graph].flatMap(([file, imports]) =>
      imports.filter((i) => !graph.has(i)).map((i) => `${file} -> ${i}`),
    );
    expect(missing).toEqual([]);
  });

  it('has no cycles', () => {
    expect(cycles().map((c) => c.join(' -> '))).toEqual([]);
  });

  it('lets nothing but the command line import cli/', () => {
    const outside = [...graph.keys()].filter((f) => !f.startsWith('cli/'));
    const offenders = outside.flatMap((f) =>
      (graph.get(f) ?? []).filter((i) => i.startsWith('cli/')).map((i) => `${f} -> ${i}`),
    );
    expect(offenders).toEqual([]);
  });

  it('keeps the library free of the testing kit and the drill', () => {
    const library = [...graph.keys()].filter(
      (f) => !f.startsWith('testing/') && !f.startsWith('drill/') && !f.startsWith('cli/'),
    );
    const offenders = library.flatMap((f) =>
      (graph.get(f) ?? [])
        .filter((i) => i.startsWith('testing/') || i.startsWith('drill/'))
        .map((i) => `${f} -> ${i}`),
    );
    expect(offenders).toEqual([]);
  });

  it('keeps the testing kit free of the drill', () => {
    expect(importsBetween('testing/', 'drill/')).toEqual([]);
  });
});
