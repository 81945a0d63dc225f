/**
 * Which code was measured: a hash of the files under src/ and the time of the newest change,
 * printed with the results because the library changes while it is being benchmarked.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SourceFingerprint {
  hash: string;
  files: number;
  /** ISO time of the most recent modification. */
  newest: string;
}

export function fingerprint(dir: URL): SourceFingerprint {
  const root = fileURLToPath(dir);
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .sort();
  const hash = createHash('sha256');
  let newest = 0;
  for (const file of files) {
    const full = join(root, file);
    hash.update(file).update('\0').update(readFileSync(full)).update('\0');
    newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return {
    hash: hash.digest('hex').slice(0, 12),
    files: files.length,
    newest: new Date(newest).toISOString(),
  };
}
