/**
 * initdb as the kit runs it: a binary that cannot be spawned rejects at once with the reason,
 * and the password file is private while it exists and gone afterwards, on every path.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runInitdb } from '../../src/testing/initdb.js';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rp-initdb-'));
  made.push(dir);
  return dir;
}

/** An "initdb" that reports the modes of its password file and that file's directory. */
function fakeInitdb(dir: string, exitCode: number): string {
  const file = path.join(dir, 'bin', 'initdb');
  mkdirSync(path.dirname(file));
  const script = [
    '#!/bin/sh',
    'for arg in "$@"; do',
    // Plain shell: strip the option's name with sed rather than a ${...} expansion.
    '  case "$arg" in --pwfile=*) f=$(echo "$arg" | sed "s/^--pwfile=//") ;; esac',
    'done',
    'echo "pwfile $(stat -c %a "$f") dir $(stat -c %a "$(dirname "$f")")"',
    `exit ${exitCode}`,
  ].join('\n');
  writeFileSync(file, `${script}\n`, { mode: 0o755 });
  return file;
}

const leftovers = (dir: string): string[] =>
  readdirSync(dir).filter((n) => n.startsWith('.pwfile-'));

describe('runInitdb', () => {
  it('rejects at once, naming the binary and the error, when it cannot be spawned', async () => {
    const dir = scratch();
    const initdb = path.join(dir, 'initdb');
    writeFileSync(initdb, 'not a program', { mode: 0o644 });
    const started = Date.now();
    const run = runInitdb({
      initdb,
      dataDir: path.join(dir, 'primary'),
      password: 'secret',
      user: undefined,
      onLog: () => {},
    });
    await expect(run).rejects.toThrow(
      `could not run ${initdb} as ourselves: spawn ${initdb} EACCES`,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(leftovers(dir)).toEqual([]);
  });

  it('hands over the password in a 0600 file in a 0700 directory, removed after a failure', async () => {
    const dir = scratch();
    const lines: string[] = [];
    const run = runInitdb({
      initdb: fakeInitdb(dir, 3),
      dataDir: path.join(dir, 'primary'),
      password: 'secret',
      user: undefined,
      onLog: (line) => lines.push(line),
    });
    await expect(run).rejects.toThrow('initdb exited with code 3');
    expect(lines).toEqual(['pwfile 600 dir 700']);
    expect(leftovers(dir)).toEqual([]);
  });

  it('removes the password file after a success too', async () => {
    const dir = scratch();
    await runInitdb({
      initdb: fakeInitdb(dir, 0),
      dataDir: path.join(dir, 'primary'),
      password: 'secret',
      user: undefined,
      onLog: () => {},
    });
    expect(leftovers(dir)).toEqual([]);
  });

  it('kills an initdb that hangs and says so', async () => {
    const dir = scratch();
    const initdb = path.join(dir, 'initdb');
    writeFileSync(initdb, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(initdb, 0o755);
    const run = runInitdb({
      initdb,
      dataDir: path.join(dir, 'primary'),
      password: 'secret',
      user: undefined,
      onLog: () => {},
      timeoutMs: 300,
    });
    await expect(run).rejects.toThrow('initdb did not finish within 300 ms');
    expect(leftovers(dir)).toEqual([]);
  });
});
