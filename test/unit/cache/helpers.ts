/** Test doubles for the cache's unit tests: pg-shaped results and a store that can fail. */

import { MemoryStore } from '../../../src/cache/memory-store.js';
import type { CacheStore } from '../../../src/cache/store.js';
import type { QueryResultLike } from '../../../src/pg-like.js';

/** A result shaped like pg's (Result minus its private parser state). */
export function pgResult(
  rows: Array<Record<string, unknown>>,
  command = 'SELECT',
): QueryResultLike {
  const names = Object.keys(rows[0] ?? { id: 0 });
  return {
    command,
    rowCount: rows.length,
    oid: null,
    rows,
    fields: names.map((name, i) => ({
      name,
      tableID: 16384,
      columnID: i + 1,
      dataTypeID: 23,
      dataTypeSize: 4,
      dataTypeModifier: -1,
      format: 'text',
    })),
  } as QueryResultLike;
}

export type StoreMode = 'ok' | 'fail' | 'hang';

/** A MemoryStore whose calls can be made to fail or to never answer; counts calls by method. */
export class FlakyStore implements CacheStore {
  mode: StoreMode = 'ok';
  readonly calls: Record<string, number> = {};
  /** Keys of every write (set, lock, incr), in order. */
  readonly written: string[] = [];
  readonly inner: MemoryStore;

  constructor(inner = new MemoryStore()) {
    this.inner = inner;
  }

  get total(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  private run<T>(method: string, op: () => Promise<T>): Promise<T> {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    if (this.mode === 'fail')
      return Promise.reject(
        Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      );
    if (this.mode === 'hang') return new Promise<T>(() => {});
    return op();
  }

  get(key: string) {
    return this.run('get', () => this.inner.get(key));
  }
  mget(keys: readonly string[]) {
    return this.run('mget', () => this.inner.mget(keys));
  }
  set(key: string, value: string, options: { px?: number; nx?: boolean }) {
    this.written.push(key);
    return this.run('set', () => this.inner.set(key, value, options));
  }
  del(key: string) {
    return this.run('del', () => this.inner.del(key));
  }
  incr(key: string, atLeast: number) {
    this.written.push(key);
    return this.run('incr', () => this.inner.incr(key, atLeast));
  }
  lock(key: string, token: string, ttl: number) {
    this.written.push(key);
    return this.run('lock', () => this.inner.lock(key, token, ttl));
  }
  unlock(key: string, token: string) {
    return this.run('unlock', () => this.inner.unlock(key, token));
  }
}

/** A pg-style connection error (classify: 'connection'). */
export function connectionError(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
}

/** A pg-style SQL error (classify: 'permanent'). */
export function sqlError(): Error {
  return Object.assign(new Error('relation "nope" does not exist'), { code: '42P01' });
}

/** A logger that records what it is given. */
export function recordingLogger() {
  const lines: Array<{ level: string; obj: object; msg: string | undefined }> = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  return {
    lines,
    logger: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') },
  };
}
