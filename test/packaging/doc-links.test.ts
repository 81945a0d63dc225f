/**
 * The README and docs as they reach a user, in the tarball (and on npm's page): every relative
 * link points at a file the tarball has, and every heading anchor exists. Files that are not
 * packed (examples, tests, sources) are linked in the repository, and those links must name a
 * file that exists in this checkout.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeRun, run } from './run.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  homepage?: string;
  repository?: { url?: string };
  bugs?: { url?: string };
};
const REPOSITORY = 'https://github.com/resilient-pool/resilient-pool';

let packed: Set<string>;

beforeAll(async () => {
  const result = await run(
    NPM,
    ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel', 'error'],
    {
      cwd: ROOT,
      timeoutMs: 60_000,
    },
  );
  if (result.code !== 0) throw new Error(describeRun('npm pack --dry-run', result));
  const [info] = JSON.parse(result.stdout) as Array<{ files: Array<{ path: string }> }>;
  packed = new Set(info?.files.map((f) => f.path) ?? []);
}, 90_000);

/** The text outside fenced code blocks, with inline code blanked (its links are not links). */
function prose(markdown: string): string {
  let inFence = false;
  return markdown
    .split('\n')
    .map((line) => {
      if (/^\s*(```|~~~)/.test(line)) {
        inFence = !inFence;
        return '';
      }
      return inFence ? '' : line.replace(/`[^`\n]*`/g, (code) => ' '.repeat(code.length));
    })
    .join('\n');
}

/** GitHub's anchors for the headings of a Markdown file (and explicit `<a id>` / `<a name>`). */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) inFence = !inFence;
    if (inFence) continue;
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) found.add(m[1]!);
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1]!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/<[^>]+>/g, '')
      .replace(/[`*~]/g, '');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    found.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return found;
}

/** The link targets of a Markdown file: inline links and images, and reference definitions. */
function links(markdown: string): Array<{ target: string; line: number }> {
  const text = prose(markdown);
  const out: Array<{ target: string; line: number }> = [];
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    out.push({ target: m[1]!, line: lineOf(m.index) });
  }
  for (const m of text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) {
    out.push({ target: m[1]!, line: lineOf(m.index) });
  }
  return out;
}

describe('README and docs links', () => {
  it('name the repository in package.json and nowhere else a host for it', () => {
    expect(manifest.homepage).toBe(`${REPOSITORY}#readme`);
    expect(manifest.repository?.url).toBe(`git+${REPOSITORY}.git`);
    expect(manifest.bugs?.url).toBe(`${REPOSITORY}/issues`);
  });

  it('point only at packed files, existing anchors, or files of the repository', () => {
    const documents = [...packed].filter((f) => f.endsWith('.md'));
    expect(documents).toContain('README.md');
    const problems: string[] = [];
    for (const doc of documents) {
      const markdown = readFileSync(path.join(ROOT, doc), 'utf8');
      for (const { target, line } of links(markdown)) {
        const where = `${doc}:${line}: ${target}`;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
          const inRepo = new RegExp(`^${REPOSITORY}/(?:blob|tree)/main/([^#?]+)`).exec(target);
          if (inRepo && !existsSync(path.join(ROOT, decodeURIComponent(inRepo[1]!)))) {
            problems.push(`${where}: no such file in the repository`);
          }
          continue;
        }
        const [file = '', anchor] = target.split('#', 2);
        const resolved =
          file === ''
            ? doc
            : path.posix.normalize(
                path.posix.join(path.posix.dirname(doc), decodeURIComponent(file)),
              );
        const isPackedDir = [...packed].some((p) =>
          p.startsWith(`${resolved.replace(/\/$/, '')}/`),
        );
        if (!packed.has(resolved) && !isPackedDir) {
          problems.push(
            `${where}: ${resolved} is not in the tarball; link it as ${REPOSITORY}/blob/main/${resolved}`,
          );
          continue;
        }
        if (anchor !== undefined && anchor !== '' && resolved.endsWith('.md')) {
          const known = anchors(readFileSync(path.join(ROOT, resolved), 'utf8'));
          if (!known.has(anchor)) problems.push(`${where}: no heading #${anchor} in ${resolved}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('computes GitHub heading anchors', () => {
    const md =
      '# A `b(c)` d\n## Re-runs on conflicts\n```\n# not a heading\n```\n## Re-runs on conflicts\n';
    expect([...anchors(md)]).toEqual(['a-bc-d', 're-runs-on-conflicts', 're-runs-on-conflicts-1']);
  });
});
