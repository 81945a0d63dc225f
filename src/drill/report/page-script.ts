/**
 * The report page's script, built from timeline-script.ts: ordinary TypeScript, checked by tsc
 * and Biome, whose compiled source is what the page runs. Every function that module exports goes
 * into one strict function scope in the page, which then calls `drawTimeline(document, window)`.
 * Whatever compiled it (tsup for dist/, vitest or tsx from src/), the functions' source is
 * consistent with itself: a bundler that renames a function renames its callers too. (Coverage
 * that instruments the source, such as istanbul's, would break the page; V8 coverage does not.)
 */
import * as timeline from './timeline-script.js';

/** The name a function declaration's source declares (a bundler may have renamed it). */
function declaredName(source: string): string {
  const name = /^function\s*([\w$]+)\s*\(/.exec(source)?.[1];
  if (name === undefined) {
    throw new TypeError(`report page script: not a function declaration: ${source.slice(0, 60)}`);
  }
  return name;
}

/**
 * The page script for these function sources, `entry` being the one to call. Runners that
 * compile TypeScript with esbuild's `keepNames` (tsx does) put calls to a module-level `__name`
 * helper inside function bodies; the page has no such helper, so an identity one is declared
 * when a source uses it.
 */
export function assemblePageScript(sources: readonly string[], entry: string): string {
  const names = new Set(sources.map(declaredName));
  if (names.size !== sources.length)
    throw new TypeError('report page script: a name is declared twice');
  if (!names.has(entry)) throw new TypeError(`report page script: no function ${entry}`);
  const helpers = sources.some((s) => /\b__name\b/.test(s))
    ? ['  var __name = function (target) { return target; };']
    : [];
  const script = [
    '',
    '(function () {',
    "  'use strict';",
    ...helpers,
    ...sources,
    `  ${entry}(document, window);`,
    '})();',
    '',
  ].join('\n');
  // The script is inlined in a <script> element: nothing in it may end or comment out that element.
  if (/<\/script|<!--/i.test(script)) {
    throw new TypeError('report page script: contains </script or <!--');
  }
  return script;
}

const sources = Object.values(timeline as Readonly<Record<string, unknown>>)
  .filter((value): value is (...args: never[]) => unknown => typeof value === 'function')
  .map((fn) => fn.toString());

/** The script of the report page: draws the timeline from the embedded report. */
export const PAGE_SCRIPT = assemblePageScript(
  sources,
  declaredName(timeline.drawTimeline.toString()),
);
