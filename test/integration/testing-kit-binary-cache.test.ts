/**
 * The parts that let the postgres OS user run binaries installed where it cannot reach them:
 * the mode-bit reachability check, and the copy in a readable cache (atomic, normalised modes,
 * reused when complete, rebuilt when not, built once by racing workers).
 */
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { blockedAncestor, EXEC, permits, READ, unusableEntry } from '../../src/testing/access.js';
import { ensureCopy, prepareCacheRoot } from '../../src/testing/binary-cache.js';
import { whyUnusable } from '../../src/testing/postgres-binaries.js';

/** Some other user: owns nothing here and is in none of its groups. */
const STRANGER = { name: 'stranger', uid: 4_000_123, gid: 4_000_123 };

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory under the temp dir, which others can enter (mkdtemp makes it 0700). */
function scratch(mode = 0o755): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rp-kit-'));
  chmodSync(dir, mode);
  made.push(dir);
  return dir;
}

/** A package-like tree, with the modes a umask of 077 would have given it. */
function fakeNative(): string {
  const native = path.join(scratch(), 'native');
  mkdirSync(path.join(native, 'bin'), { recursive: true });
  mkdirSync(path.join(native, 'lib'), { recursive: true });
  mkdirSync(path.join(native, 'share', 'timezone'), { recursive: true });
  writeFileSync(path.join(native, 'bin', 'initdb'), '#!/bin/sh\nexit 0\n', { mode: 0o700 });
  writeFileSync(path.join(native, 'lib', 'libpq.so.5.18'), 'elf', { mode: 0o600 });
  symlinkSync('libpq.so.5.18', path.join(native, 'lib', 'libpq.so.5'));
  writeFileSync(path.join(native, 'share', 'timezone', 'UTC'), 'tz', { mode: 0o600 });
  for (const dir of ['bin', 'lib', 'share', 'share/timezone']) {
    chmodSync(path.join(native, dir), 0o700);
  }
  return native;
}

const mode = (file: string): string => (lstatSync(file).mode & 0o777).toString(8);

describe('reachability by another OS user', () => {
  it('uses the owner, else the group, else the others bits, like the kernel', () => {
    const file = { mode: 0o750, uid: 10, gid: 20 };
    expect(permits(file, { uid: 10, gid: 99 }, READ | EXEC)).toBe(true);
    expect(permits(file, { uid: 11, gid: 20 }, READ | EXEC)).toBe(true);
    expect(permits(file, { uid: 11, gid: 21 }, EXEC)).toBe(false);
    // The owner class decides for the owner even when others may do more.
    expect(permits({ mode: 0o007, uid: 10, gid: 20 }, { uid: 10, gid: 20 }, READ)).toBe(false);
  });

  it('names the first directory on the way that the user cannot pass through', async () => {
    const outer = scratch();
    const closed = path.join(outer, 'closed');
    mkdirSync(path.join(closed, 'inner'), { recursive: true, mode: 0o700 });
    chmodSync(closed, 0o700);
    const target = path.join(closed, 'inner', 'bin');
    expect(await blockedAncestor(target, STRANGER)).toBe(
      `${closed} (mode 700, owner uid ${statSync(closed).uid})`,
    );
    expect(await blockedAncestor(path.join(outer, 'x'), STRANGER)).toBeUndefined();
    // Its owner passes.
    const owner = { uid: statSync(closed).uid, gid: statSync(closed).gid };
    expect(await blockedAncestor(target, owner)).toBeUndefined();
  });

  it('finds files a user cannot read or run inside a tree it can enter', async () => {
    const native = fakeNative();
    chmodSync(path.join(native, 'bin'), 0o755);
    expect(await unusableEntry(path.join(native, 'bin'), STRANGER)).toMatch(
      /bin\/initdb \(mode 700/,
    );
    chmodSync(path.join(native, 'bin', 'initdb'), 0o755);
    expect(await unusableEntry(path.join(native, 'bin'), STRANGER)).toBeUndefined();
    expect(await whyUnusable(native, STRANGER)).toMatch(/^stranger cannot use .*lib \(mode 700/);
  });
});

describe('the binary cache', () => {
  it('copies the tree readable by all, keeps relative links, and reuses a complete copy', async () => {
    const native = fakeNative();
    const root = scratch();
    expect(await prepareCacheRoot(root)).toBeUndefined();
    const spec = { source: native, parts: ['bin', 'lib', 'share'], key: 'linux-x64-1.2.3' };

    const dir = await ensureCopy(spec, root);
    expect(dir).toBe(path.join(root, 'linux-x64-1.2.3'));
    expect(mode(dir)).toBe('755');
    expect(mode(path.join(dir, 'bin', 'initdb'))).toBe('755');
    expect(mode(path.join(dir, 'lib', 'libpq.so.5.18'))).toBe('644');
    expect(mode(path.join(dir, 'share', 'timezone'))).toBe('755');
    expect(mode(path.join(dir, 'share', 'timezone', 'UTC'))).toBe('644');
    expect(readlinkSync(path.join(dir, 'lib', 'libpq.so.5'))).toBe('libpq.so.5.18');
    expect(await unusableEntry(dir, STRANGER)).toBeUndefined();

    const inode = statSync(dir).ino;
    expect(await ensureCopy(spec, root)).toBe(dir);
    expect(statSync(dir).ino).toBe(inode);
    // Nothing half-built or locked is left next to it.
    expect(readdirSync(root)).toEqual(['linux-x64-1.2.3']);
  });

  it('rebuilds a copy that lost a file', async () => {
    const native = fakeNative();
    const root = scratch();
    const spec = { source: native, parts: ['bin', 'lib', 'share'], key: 'k-1' };
    const dir = await ensureCopy(spec, root);
    rmSync(path.join(dir, 'share', 'timezone', 'UTC'));
    expect(await ensureCopy(spec, root)).toBe(dir);
    expect(existsSync(path.join(dir, 'share', 'timezone', 'UTC'))).toBe(true);
  });

  it('builds one copy when several workers ask at once', async () => {
    const native = fakeNative();
    const root = scratch();
    const spec = { source: native, parts: ['bin', 'lib', 'share'], key: 'k-2' };
    const dirs = await Promise.all([1, 2, 3].map(() => ensureCopy(spec, root)));
    expect(new Set(dirs)).toEqual(new Set([path.join(root, 'k-2')]));
    expect(readdirSync(root)).toEqual(['k-2']);
  });

  it('refuses a cache root that others can write to', async () => {
    const root = scratch(0o777);
    expect(await prepareCacheRoot(root)).toMatch(/writable by others \(mode 777\)/);
  });
});
