/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`): self time per function, top N.
 * Under tsx, Node 20 writes two profiles (the main thread and the module-loader thread); pass
 * both and the main one (the larger) is printed first.
 *
 *   npx tsx bench/cpuprofile-top.ts [--top=N] <file.cpuprofile>...
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 25);
const files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0) {
  console.error('usage: tsx bench/cpuprofile-top.ts [--top=N] <file.cpuprofile>...');
  process.exit(2);
}

function selfTimes(profile: Profile): { totalUs: number; rows: Array<[string, number]> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*\/(node_modules\/|src\/|test\/|bench\/)/, '$1');
    const key = `${functionName || '(anonymous)'}${url === '' ? '' : ` ${file}:${lineNumber + 1}`}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
    totalUs += dt;
  }
  return { totalUs, rows: [...selfUs.entries()].sort((a, b) => b[1] - a[1]) };
}

const summaries = files
  .map((file) => ({ file, ...selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile) }))
  .sort((a, b) => b.totalUs - a.totalUs);
for (const { file, totalUs, rows } of summaries) {
  console.log(`\n${file}: ${(totalUs / 1000).toFixed(0)} ms sampled, self time`);
  for (const [key, us] of rows.slice(0, top)) {
    const pct = ((100 * us) / totalUs).toFixed(1).padStart(5);
    console.log(`${pct}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
  }
}
