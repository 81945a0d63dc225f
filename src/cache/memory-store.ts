/**
 * An in-process CacheStore: a bounded LRU with per-entry expiry, for a single instance, for
 * development, and for tests without Redis. Same contract as RedisStore (strings in, strings out,
 * NX, PX, compare-and-delete locks), so the cache behaves the same over either.
 *
 * Expiry is checked when an entry is read, and the least recently used entries are evicted when
 * `maxEntries` is exceeded; there is no timer, so nothing keeps the process alive.
 */
import type { CacheStore } from './store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most entries kept (cached results, tag versions and locks together); the least recently used
   * go first.
   * @default 10000
   */
  maxEntries?: number;
}

interface Slot {
  value: string;
  /** Epoch ms after which the entry is gone; Infinity for none. */
  expiresAt: number;
}

export class MemoryStore implements CacheStore {
  readonly maxEntries: number;
  /** A Map iterates in insertion order: re-inserting on use keeps the oldest first. */
  private readonly slots = new Map<string, Slot>();

  constructor(options: MemoryStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(
        `MemoryStore: maxEntries must be an integer from 1 up, got ${String(maxEntries)}`,
      );
    }
    this.maxEntries = maxEntries;
  }

  /** Entries held, expired ones not yet noticed included. */
  get size(): number {
    return this.slots.size;
  }

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.read(key));
  }

  mget(keys: readonly string[]): Promise<Array<string | null>> {
    return Promise.resolve(keys.map((k) => this.read(k)));
  }

  set(key: string, value: string, options: { px?: number; nx?: boolean }): Promise<boolean> {
    if (options.nx === true && this.read(key) !== null) return Promise.resolve(false);
    this.write(key, value, options.px);
    return Promise.resolve(true);
  }

  del(key: string): Promise<boolean> {
    return Promise.resolve(this.read(key) !== null && this.slots.delete(key));
  }

  incr(key: string, atLeast: number): Promise<number> {
    const current = this.read(key);
    const slot = this.slots.get(key);
    let next = (current === null ? 0 : Number(current)) + 1;
    if (!Number.isSafeInteger(next)) {
      return Promise.reject(new Error('MemoryStore: value is not an integer or out of range'));
    }
    if (next < atLeast) next = atLeast;
    // Like Redis INCR, the key keeps the expiry it had.
    this.write(key, String(next), undefined, slot?.expiresAt);
    return Promise.resolve(next);
  }

  lock(key: string, token: string, ttl: number): Promise<boolean> {
    return this.set(key, token, { px: ttl, nx: true });
  }

  unlock(key: string, token: string): Promise<boolean> {
    if (this.read(key) !== token) return Promise.resolve(false);
    this.slots.delete(key);
    return Promise.resolve(true);
  }

  /** Drops every entry. */
  clear(): void {
    this.slots.clear();
  }

  private read(key: string): string | null {
    const slot = this.slots.get(key);
    if (slot === undefined) return null;
    if (Date.now() >= slot.expiresAt) {
      this.slots.delete(key);
      return null;
    }
    // Most recently used goes last.
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.value;
  }

  private write(key: string, value: string, px: number | undefined, expiresAt?: number): void {
    this.slots.delete(key);
    this.slots.set(key, {
      value,
      expiresAt: px === undefined ? (expiresAt ?? Number.POSITIVE_INFINITY) : Date.now() + px,
    });
    while (this.slots.size > this.maxEntries) {
      const oldest = this.slots.keys().next().value as string;
      this.slots.delete(oldest);
    }
  }
}
