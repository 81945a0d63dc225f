/**
 * Completes package-lock.json with entries for optional, platform-specific packages (Biome and
 * Rollup binaries for other systems) that the npm registry mirror on our machines does not
 * serve: npm leaves them out of the lock, and `npm ci` then refuses the lock as out of sync.
 * Each entry names its os/cpu/libc, so npm skips it on other platforms and fetches it by name
 * and version where it applies. Idempotent; run by `npm run lock` and by .ci/run before `npm ci`.
 */
import fs from 'node:fs';

const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8'));
const pkgs = lock.packages;
let added = 0;
for (const meta of Object.values(pkgs)) {
  for (const [name, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (pkgs[key]) continue;
    const platform = name.split('/').pop();
    const os = [
      'android',
      'darwin',
      'win32',
      'linux',
      'freebsd',
      'openbsd',
      'openharmony',
      'sunos',
      'aix',
    ].find((o) => platform.includes(o));
    const cpu = ['arm64', 'x64', 'ia32', 'arm', 'loong64', 'ppc64', 'riscv64', 's390x'].find(
      (c) => platform.split('-').includes(c) || platform.includes(`-${c}`),
    );
    const entry = { version, dev: meta.dev, optional: true };
    if (os) entry.os = [os];
    if (cpu) entry.cpu = [cpu];
    if (platform.includes('musl')) entry.libc = ['musl'];
    if (platform.endsWith('-gnu') || platform.includes('gnueabihf')) entry.libc = ['glibc'];
    pkgs[key] = entry;
    added++;
  }
}
const sorted = Object.fromEntries(
  Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
);
lock.packages = sorted;
fs.writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added} entries`);
