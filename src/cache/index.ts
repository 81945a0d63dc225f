/**
 * The read-through cache's public surface (re-exported by src/index.ts) and what ResilientPool
 * wires: the facade, option resolution and the call-option checks.
 */
export { type CacheInfo, cacheInfo } from './cache-info.js';
export { cacheIdentity } from './identity.js';
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export {
  type CacheBreakerOptions,
  type CacheCallOptions,
  type CacheLockOptions,
  type CacheOptions,
  type CacheScope,
  type CacheScopeContext,
  isCacheCallOption,
  isTagList,
  type ResolvedCacheOptions,
  resolveCacheOptions,
} from './options.js';
export {
  type CacheHandle,
  ReadThroughCache,
  type ReadThroughCacheDeps,
} from './read-through-cache.js';
export { type RedisLike, RedisStore } from './redis-store.js';
export type { CacheStats } from './stats.js';
export type { CacheStore } from './store.js';
