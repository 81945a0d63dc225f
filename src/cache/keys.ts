/**
 * Cache keys. An entry's key is
 *
 *     <prefix><identity>:<scope>:<hash>[:<version>.<version>...]
 *
 * - `identity`: which data the pool reads (its endpoints' database, user and servers, hashed;
 *   see identity.ts), or the `namespace` option in its stead, so two pools on different
 *   databases never share an entry even with one Redis and one prefix.
 * - `hash`: sha256 (base64url) of the statement text, its parameters as pg sends them, pg's
 *   rowMode and result format, and the call's tags (or of the caller's own `key` and the tags).
 *   No parameter value appears in clear.
 * - `scope`: who may share the entry (a tenant, a role). Shown as given when it is a short plain
 *   identifier, else replaced by a hash, so a scope can never inject `{`, `:` or a secret.
 *   `~` when there is none.
 * - versions: the current version of each of the call's tags, in tag order. Invalidating a tag
 *   increments its version, so every entry written under the old one is never read again (and
 *   expires by its ttl): O(1) whatever the number of entries.
 *
 * Tag versions live at `<prefix>{tags}:<tag>`: the `{tags}` hash tag puts them all in one Redis
 * Cluster slot, so one MGET reads them. A lock is `<entry key>:lock`.
 */
import { createHash } from 'node:crypto';
import type { QueryConfigLike } from '../pg-like.js';
import { prepareValue } from './prepare-value.js';

/** A scope or tag shown in clear: short, and nothing that could mean something in a key. */
const PLAIN_SCOPE = /^[A-Za-z0-9_.-]{1,64}$/;
const PLAIN_TAG = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Stands for "no scope" (or no identity); no plain or hashed segment can be it. */
const NO_SCOPE = '~';
/** An identity as cacheIdentity() makes it. */
const DERIVED_IDENTITY = /^@[A-Za-z0-9_-]{22}$/;

function sha256(input: string): string {
  return createHash('sha256').update(input).digest('base64url');
}

/**
 * Recent hashes by their input: a hot statement (or scope) is hashed once, not on every read
 * (sha256 was a third of a hit's own cost). Bounded by count and input length; cleared when full.
 */
const recentHashes = new Map<string, string>();
const RECENT_MAX = 1_024;
const RECENT_MAX_INPUT = 2_048;

function memoSha256(input: string): string {
  let hash = recentHashes.get(input);
  if (hash === undefined) {
    hash = sha256(input);
    if (input.length <= RECENT_MAX_INPUT) {
      if (recentHashes.size >= RECENT_MAX) recentHashes.clear();
      recentHashes.set(input, hash);
    }
  }
  return hash;
}

/** The scope as it appears in keys. */
export function scopeSegment(scope: string | undefined): string {
  if (scope === undefined) return NO_SCOPE;
  return PLAIN_SCOPE.test(scope) ? scope : `#${memoSha256(`scope\u0000${scope}`).slice(0, 22)}`;
}

/**
 * The identity segment of keys: the `namespace` option when given (shown as given when plain,
 * else hashed, as a scope is), else the derived identity (cacheIdentity(); anything else given is
 * hashed into that form), else `~` for a cache that was given neither.
 */
export function identitySegment(
  namespace: string | undefined,
  identity: string | undefined,
): string {
  if (namespace !== undefined) {
    return PLAIN_SCOPE.test(namespace)
      ? namespace
      : `#${memoSha256(`namespace\u0000${namespace}`).slice(0, 22)}`;
  }
  if (identity === undefined) return NO_SCOPE;
  return DERIVED_IDENTITY.test(identity)
    ? identity
    : `@${memoSha256(`identity\u0000${identity}`).slice(0, 22)}`;
}

/** A tag as it appears in keys and logs (so `user:alice@example.com` is never shown). */
export function tagSegment(tag: string): string {
  return PLAIN_TAG.test(tag) ? tag : `#${memoSha256(`tag\u0000${tag}`).slice(0, 22)}`;
}

/** Tags sorted and without repeats, so the order a caller lists them in does not matter. */
export function normalizeTags(tags: readonly string[] | undefined): readonly string[] {
  if (tags === undefined || tags.length === 0) return EMPTY;
  if (tags.length === 1) return tags;
  return [...new Set(tags)].sort();
}
const EMPTY: readonly string[] = [];

/**
 * The statement's text and parameters as pg sends them (values given apart win, as in pg), and
 * the shape of its result: `rowMode`, plus `+binary` for a QueryConfig with `binary` (pg then
 * asks for results in binary format, which parse differently).
 */
export function statementParts(
  text: string | QueryConfigLike,
  values: readonly unknown[] | undefined,
): { sql: string; values: readonly unknown[] | undefined; rowMode: string } {
  if (typeof text === 'string') return { sql: text, values, rowMode: '' };
  // pg makes rows arrays for 'array' only; any other rowMode is its default, object rows.
  const rowMode = text.rowMode === 'array' ? 'array' : '';
  return {
    sql: text.text,
    values: values ?? text.values,
    rowMode: (text as { binary?: unknown }).binary ? `${rowMode}+binary` : rowMode,
  };
}

/**
 * The parameters as pg puts them on the wire (see prepare-value.ts): one part per value, `n` for
 * NULL, `s<length>:<text>`, or `b<base64>;` for a Buffer (sent in binary format, so never equal
 * to a string). Undefined when pg would refuse them: values that are not an array, or a value it
 * cannot serialise (a BigInt inside JSON, a circular toPostgres, a toPostgres that throws); such
 * a read must go to the database, to fail there exactly as pg fails.
 */
export function paramsKeyPart(values: unknown): string | undefined {
  if (values === undefined || values === null) return '';
  if (!Array.isArray(values)) return undefined;
  let out = '';
  for (let i = 0; i < values.length; i++) {
    let prepared: unknown;
    try {
      prepared = prepareValue(values[i]);
    } catch {
      return undefined;
    }
    if (prepared === null || prepared === undefined) out += 'n';
    else if (typeof prepared === 'string') out += `s${prepared.length}:${prepared}`;
    else if (prepared instanceof Buffer) out += `b${prepared.toString('base64')};`;
    // Anything else makes pg's serializer throw.
    else return undefined;
  }
  return out;
}

/**
 * The hash part of an entry key; undefined when pg would refuse the parameters (see
 * {@link paramsKeyPart}), with a caller's `key` too (a hit must not answer a call pg fails).
 * Every variable part is length-prefixed or self-delimiting, so two different calls cannot
 * produce the same hash input.
 */
export function entryHash(
  sql: string,
  values: readonly unknown[] | undefined,
  rowMode: string,
  tags: readonly string[],
  explicitKey: string | undefined,
): string | undefined {
  const params = paramsKeyPart(values);
  if (params === undefined) return undefined;
  const tagPart = tags.length === 0 ? '' : JSON.stringify(tags);
  if (explicitKey !== undefined) {
    return memoSha256(`k1\u0000${explicitKey.length}:${explicitKey}\u0000${tagPart}`);
  }
  return memoSha256(
    `q2\u0000${rowMode}\u0000${sql.length}:${sql}\u0000${values?.length ?? 0}:${params}\u0000${tagPart}`,
  );
}

/** The key of an entry; `versions` are the tags' current versions, in tag order. */
export function entryKey(
  prefix: string,
  scope: string,
  hash: string,
  versions: readonly string[] | undefined,
): string {
  const base = `${prefix}${scope}:${hash}`;
  return versions === undefined || versions.length === 0 ? base : `${base}:${versions.join('.')}`;
}

export function tagKey(prefix: string, tag: string): string {
  return `${prefix}{tags}:${tagSegment(tag)}`;
}

export function lockKey(entry: string): string {
  return `${entry}:lock`;
}

/**
 * The least version a tag may have now: the clock in microseconds. A missing tag counter starts
 * here, and an invalidation never leaves a counter below it, so a counter that was evicted or
 * flushed comes back above every version it ever had (unless more than a million invalidations
 * a second were sustained, or clocks went back), and old entries cannot become readable again.
 */
export function versionFloor(now: number = Date.now()): number {
  return now * 1000;
}

/** A tag version as stored: a decimal integer. */
export function isVersion(value: string): boolean {
  return /^\d{1,19}$/.test(value);
}
