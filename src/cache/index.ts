/**
 * The read-through cache's public surface (re-exported by src/index.ts) and what ResilientPool
 * wires: the facade and the stores. Its option types live with every other option, in
 * src/options/, and are re-exported here as part of that surface.
 */

// The cache's options are resolved with the pool's; kept here for code that wires a cache alone.
export { resolveCacheOptions } from '../options/cache.js';
export type {
  CacheBreakerOptions,
  CacheCallOptions,
  CacheLockOptions,
  CacheOptions,
  CacheScope,
  CacheScopeContext,
} from '../options/cache-types.js';
export type { ResolvedCacheOptions } from '../options/resolved.js';
export { type CacheInfo, cacheInfo } from './cache-info.js';
export { cacheIdentity } from './identity.js';
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export {
  type CacheHandle,
  ReadThroughCache,
  type ReadThroughCacheDeps,
} from './read-through-cache.js';
export { type RedisLike, RedisStore } from './redis-store.js';
export type { CacheStats } from './stats.js';
export type { CacheStore } from './store.js';
