import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../../../src/cache/memory-store.js';

describe('MemoryStore', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('expires entries after px', async () => {
    const store = new MemoryStore();
    await store.set('a', '1', { px: 100 });
    vi.advanceTimersByTime(99);
    expect(await store.get('a')).toBe('1');
    vi.advanceTimersByTime(1);
    expect(await store.get('a')).toBeNull();
  });

  it('evicts the least recently used entry past maxEntries', async () => {
    const store = new MemoryStore({ maxEntries: 2 });
    await store.set('a', '1', {});
    await store.set('b', '2', {});
    await store.get('a'); // a is now the most recently used
    await store.set('c', '3', {});
    expect(await store.mget(['a', 'b', 'c'])).toEqual(['1', null, '3']);
    expect(store.size).toBe(2);
  });

  it('writes with nx only when absent (or expired)', async () => {
    const store = new MemoryStore();
    expect(await store.set('a', '1', { nx: true, px: 10 })).toBe(true);
    expect(await store.set('a', '2', { nx: true })).toBe(false);
    vi.advanceTimersByTime(10);
    expect(await store.set('a', '3', { nx: true })).toBe(true);
    expect(await store.get('a')).toBe('3');
  });

  it('locks with a token and unlocks only with the same token', async () => {
    const store = new MemoryStore();
    expect(await store.lock('l', 't1', 1_000)).toBe(true);
    expect(await store.lock('l', 't2', 1_000)).toBe(false);
    expect(await store.unlock('l', 't2')).toBe(false);
    expect(await store.unlock('l', 't1')).toBe(true);
    expect(await store.lock('l', 't2', 1_000)).toBe(true);
    vi.advanceTimersByTime(1_000);
    expect(await store.lock('l', 't3', 1_000)).toBe(true);
  });

  it('increments, never below the floor given', async () => {
    const store = new MemoryStore();
    expect(await store.incr('v', 0)).toBe(1);
    expect(await store.incr('v', 0)).toBe(2);
    expect(await store.incr('v', 1_000)).toBe(1_000);
    expect(await store.incr('v', 10)).toBe(1_001);
    expect(await store.del('v')).toBe(true);
    expect(await store.del('v')).toBe(false);
  });

  it('rejects a bad maxEntries', () => {
    expect(() => new MemoryStore({ maxEntries: 0 })).toThrow(/maxEntries/);
  });
});
