/**
 * The read-through cache: store + policy. A cached read
 *
 *   1. builds its key (scope, statement hash, and the versions of its tags: one MGET);
 *   2. joins an identical read already in flight in this process, or starts one that
 *   3. reads the entry (GET): fresh -> served; past ttl but within grace -> kept as a fallback;
 *   4. otherwise takes the fill lock (SET NX PX) so one instance runs the query while the others
 *      serve their stale entry or poll briefly for the new one; then runs `load()`, returns its
 *      result at once and stores the entry in the background (SET PX), then releases the lock;
 *   5. if `load()` fails with a database-availability error and a stale entry is at hand, serves
 *      that instead (stale-if-error).
 *
 * Every store call is raced against `timeout` and guarded by the cache's breaker (StoreGuard):
 * the first store failure of a read sends it straight to the database, and while the breaker is
 * open reads do not touch the store at all. A store failure never fails a read.
 */
import { randomUUID } from 'node:crypto';
import type { CircuitBreaker } from '../breaker/circuit-breaker.js';
import { classify } from '../classify.js';
import { raceAbort } from '../deadline.js';
import { abortError, ConfigError } from '../errors.js';
import { resolveCallSettings, tagsProblem } from '../options/cache.js';
import type { CacheCallOptions } from '../options/cache-types.js';
import type { CallSettings, ResolvedCacheOptions } from '../options/resolved.js';
import type { QueryConfigLike, QueryResultLike } from '../pg-like.js';
import type { BreakerState } from '../telemetry/events.js';
import type { LoggerLike } from '../telemetry/logger.js';
import { createCacheBreaker } from './cache-breaker.js';
import { setCacheInfo } from './cache-info.js';
import { type DecodedEntry, decodeEntry, encodeEntry, isDecoded } from './codec.js';
import { jitteredTtl } from './expiry.js';
import { type Guarded, StoreGuard, UNAVAILABLE } from './guarded-store.js';
import {
  entryHash,
  entryKey,
  identitySegment,
  isVersion,
  lockKey,
  normalizeTags,
  scopeSegment,
  statementParts,
  tagKey,
  tagSegment,
  versionFloor,
} from './keys.js';
import { clientAdvice, RedisStore } from './redis-store.js';
import { SingleFlight } from './single-flight.js';
import { type CacheCounters, type CacheStats, newCounters } from './stats.js';
import type { CacheStore } from './store.js';

/** What the cache needs from its owner. */
export interface ReadThroughCacheDeps {
  logger: LoggerLike;
  /** Called on every change of the cache breaker's state (emit `cacheBreaker` from here). */
  onBreaker: (state: BreakerState, previous: BreakerState) => void;
  /**
   * Which data the pool reads: `cacheIdentity(pools)` of every pool reads may reach. Part of
   * every entry key, so pools on different databases (users, servers) never share entries.
   * Ignored when the options give a `namespace`; without either, keys carry `~` and every cache
   * on the store shares entries.
   */
  identity?: string;
}

/** An entry read from the store that is the entry of another key (a desynchronised reply). */
class ForeignEntryError extends Error {
  override readonly name = 'ForeignEntryError';
}

type QueryText = string | QueryConfigLike;
type Load = () => Promise<QueryResultLike>;

/** Database errors after which a stale entry is better than the error. */
const STALE_IF_ERROR = new Set(['connection', 'timeout', 'resource', 'unavailable']);

/** How long repeated warnings of one kind stay quiet, in ms. */
const WARN_EVERY_MS = 10_000;

/** An entry as read: its text (for copies) and its decoded form. */
interface Found {
  text: string;
  entry: DecodedEntry;
}

/** What one flight produced; shared by every read that joined it. */
interface Outcome {
  kind: 'hit' | 'stale' | 'miss' | 'bypass';
  key: string;
  /** The leader's result: pg's own object on a miss, a decoded copy on a hit. */
  result: QueryResultLike;
  /** The entry text, from which each follower decodes its own copy; absent if not encodable. */
  text: string | undefined;
}

/** What a pool exposes of its cache (`db.cache`). */
export interface CacheHandle {
  /** See {@link ReadThroughCache.invalidate}. */
  invalidate(tags: readonly string[]): Promise<void>;
  /** See {@link ReadThroughCache.stats}. */
  stats(): CacheStats;
}

export class ReadThroughCache implements CacheHandle {
  private readonly store: CacheStore;
  private readonly breaker: CircuitBreaker;
  private readonly guard: StoreGuard;
  private readonly counters: CacheCounters = newCounters();
  private readonly flights = new SingleFlight<Outcome>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly defaults: CallSettings;
  /** The pool's scope as it appears in keys, when it is a fixed string (computed once). */
  private readonly fixedScope: string | undefined;
  /** `<prefix><identity>:`, the start of every entry key (tag keys have the bare prefix). */
  private readonly entryPrefix: string;
  private readonly logger: LoggerLike;
  private readonly lastWarned = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly options: ResolvedCacheOptions,
    deps: ReadThroughCacheDeps,
  ) {
    this.logger = deps.logger;
    this.store = options.store;
    this.breaker = createCacheBreaker(options.breaker, (state, previous) => {
      if (state === 'open') {
        this.logger.warn(
          { previous },
          'resilient-pool: cache breaker open; reads go straight to the database',
        );
      } else if (state === 'closed') {
        this.logger.info({ previous }, 'resilient-pool: cache breaker closed; cache in use again');
      }
      try {
        deps.onBreaker(state, previous);
      } catch (err) {
        this.logger.error({ err }, 'resilient-pool: cacheBreaker listener threw; ignored');
      }
    });
    this.guard = new StoreGuard(this.breaker, options.timeout, this.counters, this.logger);
    this.defaults = {
      ttl: options.ttl,
      grace: options.grace,
      tags: [],
      key: undefined,
      scope: options.scope,
    };
    this.fixedScope = typeof options.scope === 'function' ? undefined : scopeSegment(options.scope);
    this.entryPrefix = `${options.prefix}${identitySegment(options.namespace, deps.identity)}:`;
    if (this.store instanceof RedisStore) {
      for (const advice of clientAdvice(this.store.client, options.breaker.resetTimeout)) {
        this.logger.warn({}, `resilient-pool: cache: ${advice} (see docs/cache.md)`);
      }
    }
  }

  /**
   * A read through the cache: the entry when there is a fresh one, else `load()`'s result (stored
   * for the next read). Rejects only with `load()`'s error (or ConfigError for a bad `call`, or
   * AbortedError, or the call's TimeoutError, when `signal` fires while the read waits on another's work), never because of
   * the store.
   *
   * @param call `true` for the pool's settings, or this call's {@link CacheCallOptions}.
   * @param load Runs the statement on the database (the pool's normal read path).
   * @param signal Aborts the wait for another read's work; `load()` is expected to honour it too.
   */
  read(
    text: QueryText,
    values: readonly unknown[] | undefined,
    call: true | CacheCallOptions,
    load: Load,
    signal?: AbortSignal,
  ): Promise<QueryResultLike> {
    const settings = resolveCallSettings(call, this.defaults);
    if ('problems' in settings) {
      return Promise.reject(new ConfigError(settings.problems.map((p) => `read(): ${p}`)));
    }
    if (signal?.aborted) return Promise.reject(abortError(undefined, signal));
    const tags = normalizeTags(settings.tags);
    if (this.closed) return this.bypass(load, '');
    const { sql, values: params, rowMode } = statementParts(text, values);
    // Custom type parsers change the result but cannot be part of a key: only a caller's key
    // can vouch that all calls sharing it parse alike. A missing text is left for pg to refuse.
    if (
      typeof sql !== 'string' ||
      (settings.key === undefined && (text as QueryConfigLike).types !== undefined)
    ) {
      return this.bypass(load, '');
    }
    const scope = this.scopeOf(settings, sql, params, tags);
    if (scope === undefined) return this.bypass(load, '');
    const hash = entryHash(sql, params, rowMode, tags, settings.key);
    // Parameters pg cannot send: the database answers, with pg's own error.
    if (hash === undefined) return this.bypass(load, '');
    const base = entryKey(this.entryPrefix, scope, hash, undefined);
    if (!this.breaker.admits) return this.bypass(load, base);
    return this.keyed(base, scope, hash, tags, settings, load, signal);
  }

  /**
   * Makes every entry read with any of `tags` unreadable, here and in every instance sharing the
   * store (one INCR per tag, whatever the number of entries). Never rejects because of the store:
   * when it is down the failure is logged and counted (`invalidationFailures`), and the entries
   * concerned stay readable until their ttl (+ grace) runs out.
   */
  async invalidate(tags: readonly string[]): Promise<void> {
    const problem = tagsProblem(tags);
    if (problem !== undefined) throw new ConfigError([`invalidate(): tags ${problem}`]);
    const unique = normalizeTags(tags);
    if (unique.length === 0) return;
    const floor = versionFloor();
    const outcomes = this.closed
      ? unique.map(() => UNAVAILABLE)
      : await Promise.all(
          unique.map((tag) =>
            this.guard.call('EVAL incr', () =>
              this.store.incr(tagKey(this.options.prefix, tag), floor),
            ),
          ),
        );
    const failed = unique.filter((_, i) => outcomes[i] === UNAVAILABLE);
    this.counters.invalidations += unique.length - failed.length;
    if (failed.length === 0) return;
    this.counters.invalidationFailures += failed.length;
    this.warnThrottled(
      'invalidate',
      { tags: failed.map(tagSegment), breaker: this.breaker.state },
      'resilient-pool: cache invalidation not applied (store unavailable); entries with these tags stay readable until their ttl runs out',
    );
  }

  /** A snapshot of the cache's counters and breaker state. */
  stats(): CacheStats {
    return { breaker: this.breaker.state, ...this.counters };
  }

  /**
   * Resolves when the entry writes and lock releases started so far have finished (they run
   * after the read that caused them has returned). For tests and orderly shutdown.
   */
  async whenIdle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /**
   * Stops the cache's timers; later reads go straight to `load()`. The store (the application's
   * Redis client) is left as it is: never quit, never disconnected.
   */
  close(): void {
    this.closed = true;
    this.breaker.shutdown();
  }

  // ---- the read path ---------------------------------------------------------------------------

  /** Finds the read's key (tag versions first, if it has tags), then looks the entry up. */
  private keyed(
    base: string,
    scope: string,
    hash: string,
    tags: readonly string[],
    settings: CallSettings,
    load: Load,
    signal: AbortSignal | undefined,
  ): Promise<QueryResultLike> {
    if (tags.length === 0) return this.lookup(base, settings, load, signal);
    return this.tagVersions(tags).then((versions) =>
      versions === UNAVAILABLE
        ? this.bypass(load, base)
        : this.lookup(entryKey(this.entryPrefix, scope, hash, versions), settings, load, signal),
    );
  }

  /**
   * Joins the flight for `key`, or starts one: GET, then a fresh entry ends it, else fill. Plain
   * promise chains rather than async functions: a hit allocates as little as it can while it
   * waits for Redis (what survives a wait is what the garbage collector has to copy).
   */
  private lookup(
    key: string,
    settings: CallSettings,
    load: Load,
    signal: AbortSignal | undefined,
  ): Promise<QueryResultLike> {
    const joined = this.flights.joined(key);
    if (joined !== undefined) {
      this.counters.coalesced++;
      return this.follow(joined, key, load, signal);
    }
    const flight = this.get(key).then((found) => this.afterGet(key, found, settings, load));
    this.flights.add(key, flight);
    return raceSignal(flight, signal).then((outcome) => this.deliver(outcome, true));
  }

  /** A flight once its GET answered: a fresh entry ends it; anything else goes on to fill. */
  private afterGet(
    key: string,
    found: Found | null | typeof UNAVAILABLE,
    settings: CallSettings,
    load: Load,
  ): Outcome | Promise<Outcome> {
    let stale: Found | undefined;
    if (found !== UNAVAILABLE && found !== null) {
      const now = Date.now();
      if (now < found.entry.freshUntil) {
        this.flights.done(key);
        return hitOf('hit', key, found);
      }
      if (now < found.entry.freshUntil + settings.grace) stale = found;
    }
    const rest =
      found === UNAVAILABLE ? this.direct(key, load) : this.fill(key, settings, load, stale);
    return rest.finally(() => this.flights.done(key));
  }

  /** The versions of `tags`; a tag never seen (or evicted) is given one above any it had. */
  private async tagVersions(tags: readonly string[]): Promise<string[] | typeof UNAVAILABLE> {
    const keys = tags.map((tag) => tagKey(this.options.prefix, tag));
    const read = () => this.guard.call('MGET', () => this.store.mget(keys).then(checkVersions));
    const first = await read();
    if (first === UNAVAILABLE || !first.includes(null))
      return first as string[] | typeof UNAVAILABLE;
    const floor = String(versionFloor());
    const created = await Promise.all(
      keys.map((k, i) =>
        first[i] === null
          ? this.guard.call('SET NX', () => this.store.set(k, floor, { nx: true }))
          : true,
      ),
    );
    if (created.includes(UNAVAILABLE)) return UNAVAILABLE;
    const second = await read();
    if (second === UNAVAILABLE || second.includes(null)) return UNAVAILABLE;
    return second as string[];
  }

  /** A read that found another in flight for its key: shares its outcome. */
  private async follow(
    joined: Promise<Outcome>,
    key: string,
    load: Load,
    signal: AbortSignal | undefined,
  ): Promise<QueryResultLike> {
    let outcome: Outcome;
    try {
      outcome = await raceSignal(joined, signal);
    } catch (err) {
      // The leader's own signal or deadline ended its query; this read was not aborted (nor
      // past its own deadline), so it runs its own.
      const code = (err as { code?: unknown }).code;
      if (!signal?.aborted && (classify(err) === 'aborted' || code === 'E_TIMEOUT')) {
        return this.bypass(load, key);
      }
      throw err;
    }
    return this.deliver(outcome, false);
  }

  /** Counts the outcome for one read and gives it its own result object. */
  private deliver(outcome: Outcome, leader: boolean): QueryResultLike {
    const { kind, key, text } = outcome;
    let result = outcome.result;
    if (!leader && text !== undefined) {
      // The text was checked when it was read (or just written), so this decode succeeds.
      const copy = decodeEntry(text, key);
      if (isDecoded(copy)) result = copy.result;
    }
    switch (kind) {
      case 'hit':
        this.counters.hits++;
        break;
      case 'stale':
        this.counters.staleServes++;
        break;
      case 'miss':
        this.counters.misses++;
        break;
      default:
        this.counters.bypasses++;
    }
    const hit = kind === 'hit' || kind === 'stale';
    setCacheInfo(result, { hit, stale: kind === 'stale', key, bypassed: kind === 'bypass' });
    return result;
  }

  private async fill(
    key: string,
    settings: CallSettings,
    load: Load,
    stale: Found | undefined,
  ): Promise<Outcome> {
    const lock = this.options.lock;
    let token: string | undefined;
    let storeUp = true;
    if (lock !== false) {
      const candidate = randomUUID();
      const taken = await this.guard.call('SET NX PX', () =>
        this.store.lock(lockKey(key), candidate, lock.ttl),
      );
      if (taken === UNAVAILABLE) storeUp = false;
      else if (taken) token = candidate;
      // Another instance is filling this entry: serve what we have, or wait for theirs.
      else if (stale !== undefined) return hitOf('stale', key, stale);
      else {
        const filled = await this.waitForFill(key, lock.wait, lock.poll);
        if (filled === UNAVAILABLE) storeUp = false;
        else if (filled !== undefined) return hitOf('hit', key, filled);
      }
    }
    let result: QueryResultLike;
    try {
      result = await load();
    } catch (err) {
      if (token !== undefined) this.inBackground(this.unlock(key, token));
      if (stale !== undefined && STALE_IF_ERROR.has(classify(err))) {
        return hitOf('stale', key, stale);
      }
      throw err;
    }
    const ttl = jitteredTtl(settings.ttl, this.options.jitter);
    const text = this.encode(key, result, Date.now() + ttl);
    if (storeUp && text !== undefined) {
      this.inBackground(this.put(key, text, ttl + settings.grace, token));
    } else if (token !== undefined) {
      this.inBackground(this.unlock(key, token));
    }
    return { kind: storeUp ? 'miss' : 'bypass', key, result, text };
  }

  /** Polls for an entry another instance is filling, for at most `wait` ms. */
  private async waitForFill(
    key: string,
    wait: number,
    poll: number,
  ): Promise<Found | undefined | typeof UNAVAILABLE> {
    const deadline = Date.now() + wait;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return undefined;
      await sleep(Math.min(poll, remaining));
      const found = await this.get(key);
      if (found === UNAVAILABLE) return found;
      if (found !== null && Date.now() < found.entry.freshUntil) return found;
    }
  }

  /**
   * The entry at `key`: null when there is none, or it has another format, or it does not pass
   * validation (counted as `corrupt`; the read then fills it again like any miss). The entry of
   * another key is a store failure: a reply that reached the wrong command.
   */
  private get(key: string): Guarded<Found | null> {
    return this.guard.call('GET', () =>
      this.store.get(key).then((text) => {
        if (text === null) return null;
        const entry = decodeEntry(text, key);
        if (isDecoded(entry)) return { text, entry };
        if (entry.rejected === 'foreign') throw new ForeignEntryError(entry.reason);
        if (entry.rejected === 'corrupt') {
          this.counters.corrupt++;
          this.warnThrottled(
            'corrupt',
            { reason: entry.reason },
            'resilient-pool: a cache entry failed validation and was treated as a miss',
          );
        }
        return null;
      }),
    );
  }

  /** The store failed during the read: the database answers, nothing is stored. */
  private async direct(key: string, load: Load): Promise<Outcome> {
    return { kind: 'bypass', key, result: await load(), text: undefined };
  }

  private bypass(load: Load, key: string): Promise<QueryResultLike> {
    this.counters.bypasses++;
    return load().then((result) => {
      setCacheInfo(result, { hit: false, stale: false, key, bypassed: true });
      return result;
    });
  }

  private encode(key: string, result: QueryResultLike, freshUntil: number): string | undefined {
    // Multi-statement results (an array of results) and anything without rows are not cached.
    if (typeof result !== 'object' || result === null || !Array.isArray(result.rows)) {
      return undefined;
    }
    let text: string;
    try {
      text = encodeEntry(key, result, freshUntil);
    } catch (err) {
      this.warnThrottled('encode', { err }, 'resilient-pool: cache could not encode a result');
      return undefined;
    }
    const max = this.options.maxEntryBytes;
    if (text.length * 3 > max && Buffer.byteLength(text) > max) {
      this.counters.oversize++;
      return undefined;
    }
    return text;
  }

  private async put(key: string, text: string, px: number, token: string | undefined) {
    const written = await this.guard.call('SET PX', () => this.store.set(key, text, { px }));
    if (written === true) this.counters.fills++;
    if (token !== undefined) await this.unlock(key, token);
  }

  private unlock(key: string, token: string): Guarded<boolean> {
    return this.guard.call('EVAL unlock', () => this.store.unlock(lockKey(key), token));
  }

  private inBackground(work: Promise<unknown>): void {
    this.background.add(work);
    const done = () => {
      this.background.delete(work);
    };
    work.then(done, done);
  }

  /** The scope segment of this read's key; undefined when the scope function failed. */
  private scopeOf(
    settings: CallSettings,
    sql: string,
    values: readonly unknown[] | undefined,
    tags: readonly string[],
  ): string | undefined {
    const { scope } = settings;
    if (scope === this.options.scope && this.fixedScope !== undefined) return this.fixedScope;
    if (typeof scope !== 'function') return scopeSegment(scope);
    let value: unknown;
    try {
      value = scope({ text: sql, values, tags });
    } catch (err) {
      this.warnThrottled(
        'scope',
        { err },
        'resilient-pool: cache scope function threw; the read skips the cache',
      );
      return undefined;
    }
    if (typeof value !== 'string') {
      this.warnThrottled(
        'scope',
        { got: typeof value },
        'resilient-pool: cache scope function did not return a string; the read skips the cache',
      );
      return undefined;
    }
    return scopeSegment(value);
  }

  private warnThrottled(kind: string, fields: object, message: string): void {
    const now = Date.now();
    const last = this.lastWarned.get(kind);
    if (last !== undefined && now - last < WARN_EVERY_MS) return;
    this.lastWarned.set(kind, now);
    this.logger.warn(fields, message);
  }
}

function hitOf(kind: 'hit' | 'stale', key: string, found: Found): Outcome {
  return { kind, key, result: found.entry.result, text: found.text };
}

function checkVersions(reply: Array<string | null>): Array<string | null> {
  for (const v of reply) {
    if (v !== null && !isVersion(v)) throw new Error('a tag version is not an integer');
  }
  return reply;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or AbortedError as soon as `signal` fires (the work itself goes on for others). */
function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortError(undefined, signal));
  return raceAbort(promise, signal, () => abortError(undefined, signal));
}
