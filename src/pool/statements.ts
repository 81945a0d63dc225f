/**
 * What `read()` and `write()` add to the call path: a read that must see a write goes to an
 * endpoint that has replayed it; a read asked to be cached goes through the read-through cache;
 * a plain read asked to consolidate shares the execution of an identical read in flight; a write
 * in a session records its consistency token, and a write that changes cached data invalidates
 * its tags, also after a failure that may have applied it. Options were validated by the facade.
 *
 * With hedging on, each read gets its hedge plan here (the only place that knows the caller's
 * `idempotent` as passed, and the read's consistency token): reads are hedged unless they pass
 * `idempotent: false`; a read that must see a write only to endpoints that have replayed it.
 * Writes never are (nor `query()`, transactions and `connect()` clients, which do not come here).
 */
import type { ReadThroughCache } from '../cache/index.js';
import { classify } from '../classify.js';
import { endpointAtLeast } from '../consistency/replica-at.js';
import type { Sessions } from '../consistency/session.js';
import { consistencyToken, tokenPosition } from '../consistency/token.js';
import { raceAbort, withDeadline } from '../deadline.js';
import type { Statement } from '../endpoint/endpoint.js';
import { ConfigError, PoolClosedError } from '../errors.js';
import type { QueryConfigLike, QueryResultLike } from '../pg-like.js';
import { wasNotSent } from '../retry/policy.js';
import type { SqlClassifier } from '../routing/classify-sql.js';
import type { HedgePlan, Hedging } from '../routing/hedge.js';
import type { Router } from '../routing/router.js';
import type { ReadOptions, WriteOptions } from './call-options.js';
import type { CallPath } from './call-path.js';
import { type Consolidator, consolidationKey } from './consolidation.js';

type Values = readonly unknown[];

export interface StatementsDeps {
  callPath: CallPath;
  router: Router;
  sessions: Sessions;
  sql: SqlClassifier;
  readCache: ReadThroughCache | undefined;
  consistencyWaitMs: number;
  /** Aborts (with PoolClosedError) at `end()`. */
  lifetime: AbortSignal;
  /** Identical plain reads in flight share one execution (per call, or pool-wide). */
  consolidator: Consolidator;
  /** The pool's `consolidation` option: reads consolidate unless they pass `consolidate: false`. */
  consolidateReads: boolean;
  /** Hedged reads; undefined when the `hedge` option is off. */
  hedging: Hedging | undefined;
}

export class Statements {
  constructor(private readonly deps: StatementsDeps) {}

  read(
    text: string | QueryConfigLike,
    values: Values | undefined,
    options: ReadOptions | undefined,
  ): Promise<QueryResultLike> {
    const { router, sessions, sql: classifier, readCache, hedging } = this.deps;
    const statement: Statement = { text, values, captureToken: false };
    const idempotent = options?.idempotent ?? false;
    // A read that must see a write: the caller's token, or its session's latest.
    const session = sessions.current();
    const token = options?.after ?? session?.token;
    if (token !== undefined && router.replicas.length > 0 && options?.cache === undefined) {
      const position = tokenPosition(token);
      if (position !== undefined) return this.readAfter(statement, idempotent, options, position);
    }
    // `idempotent` as passed: left out is not the same as `false` here (see Hedging.plan).
    const hedge = hedging === undefined ? undefined : hedging.plan(options?.idempotent);
    const cache = options?.cache;
    // Only what the classifier is sure is a plain read is cached: a read() whose statement
    // writes (a function with side effects aside, which no classifier sees) bypasses the cache.
    const sql = typeof text === 'string' ? text : text?.text;
    const cached =
      cache !== undefined &&
      cache !== false &&
      typeof sql === 'string' &&
      classifier.classify(sql) === 'read';
    if (!cached) {
      // Never in a session or with a token: an execution that started before the caller's write
      // was replayed (or committed) would answer without it.
      if (
        (options?.consolidate ?? this.deps.consolidateReads) &&
        session === undefined &&
        token === undefined &&
        typeof sql === 'string' &&
        classifier.classify(sql) === 'read'
      ) {
        const key = consolidationKey('replica', text, values, idempotent);
        if (key !== undefined) return this.consolidated(key, statement, idempotent, hedge, options);
      }
      return withDeadline(options?.timeout, options?.signal, (signal) =>
        this.sendRead(statement, signal, idempotent, hedge),
      );
    }
    if (readCache === undefined) {
      return Promise.reject(
        new ConfigError(["read(): option 'cache' needs the pool's `cache` option"]),
      );
    }
    if (this.deps.lifetime.aborted) return Promise.reject(new PoolClosedError());
    // One deadline for the whole cached read: the wait on another caller's fill, the store and
    // the query share it.
    return withDeadline(options?.timeout, options?.signal, (signal) =>
      readCache.read(
        text,
        values,
        cache,
        () => this.sendRead(statement, signal, idempotent, hedge),
        signal,
      ),
    );
  }

  write(
    text: string | QueryConfigLike,
    values: Values | undefined,
    options: WriteOptions | undefined,
  ): Promise<QueryResultLike> {
    const { callPath, sessions, readCache } = this.deps;
    const session = sessions.current();
    const captureToken = options?.captureToken ?? session !== undefined;
    let written = withDeadline(options?.timeout, options?.signal, (signal) =>
      callPath.statement({
        role: 'write',
        statement: { text, values, captureToken },
        signal,
        idempotent: options?.idempotent ?? false,
        pinned: undefined,
        hedge: undefined,
      }),
    );
    if (captureToken && session !== undefined) {
      written = written.then((result) => {
        const token = consistencyToken(result);
        if (token !== undefined) sessions.record(token);
        return result;
      });
    }
    const tags = options?.invalidates;
    if (readCache === undefined || tags === undefined || tags.length === 0) return written;
    // Invalidate after the write, and also after a failure that may have applied it.
    return written.then(
      async (result) => {
        await readCache.invalidate(tags);
        return result;
      },
      async (err: unknown) => {
        if (mayHaveApplied(err)) await readCache.invalidate(tags);
        throw err;
      },
    );
  }

  /**
   * A read that shares the execution of an identical one in flight, or starts it. The caller's
   * signal and timeout bound its own wait (the consolidator keeps them, without the
   * AbortController withDeadline would make); the execution runs under the consolidator's
   * signal, which aborts only when every caller waiting on it has left.
   */
  private consolidated(
    key: string,
    statement: Statement,
    idempotent: boolean,
    hedge: HedgePlan | undefined,
    options: ReadOptions | undefined,
  ): Promise<QueryResultLike> {
    const { consolidator, lifetime } = this.deps;
    // An execution still in flight at end() must not take new callers.
    if (lifetime.aborted) return Promise.reject(new PoolClosedError());
    return consolidator.run(key, options?.signal, options?.timeout, (shared) =>
      this.sendRead(statement, shared, idempotent, hedge),
    );
  }

  /** A read the router places (no pinned endpoint): plain, cached fill or consolidated. */
  private sendRead(
    statement: Statement,
    signal: AbortSignal | undefined,
    idempotent: boolean,
    hedge: HedgePlan | undefined,
  ): Promise<QueryResultLike> {
    return this.deps.callPath.statement({
      role: 'read',
      statement,
      signal,
      idempotent,
      pinned: undefined,
      hedge,
    });
  }

  /**
   * A read routed to an endpoint that has replayed up to `position` (the primary at worst); its
   * hedge, if any, goes only to another endpoint that has too.
   */
  private readAfter(
    statement: Statement,
    idempotent: boolean,
    options: ReadOptions | undefined,
    position: bigint,
  ): Promise<QueryResultLike> {
    const { callPath, router, consistencyWaitMs, lifetime, hedging } = this.deps;
    const hedge = hedging?.planAfter(options?.idempotent, position);
    return withDeadline(options?.timeout, options?.signal, async (signal) => {
      const choosing = endpointAtLeast(router, position, consistencyWaitMs, signal, lifetime);
      const pinned = await raceAbort(choosing, lifetime, () => lifetime.reason);
      return callPath.statement({ role: 'read', statement, signal, idempotent, pinned, hedge });
    });
  }
}

/**
 * Whether a failed write may have been applied: unless it certainly was not (refused before
 * sending, or answered with an error), it may have. An abort or a timeout can land after the
 * commit.
 */
function mayHaveApplied(err: unknown): boolean {
  const c = classify(err);
  return !(wasNotSent(err) || c === 'permanent' || c === 'conflict' || c === 'read-only');
}
