/**
 * The public option types of query consolidation: the pool-wide `consolidation` option. (The
 * per-call switch is `read()`'s `consolidate`, in pool/call-options.ts.) They ship in the .d.ts
 * as written, so each option carries its JSDoc and `@default` (the values live in
 * consolidation.ts until they join defaults.ts).
 */

/** Settings of pool-wide consolidation; passing an object turns it on. */
export interface ConsolidationSettings {
  /**
   * Most calls that may wait on one execution besides the call that started it. An identical
   * read that finds this many already waiting starts an execution of its own, which later
   * identical reads join in turn: a hot statement runs once per `maxWaiters + 1` callers rather
   * than once for all of them. The bound keeps one failure from reaching an unbounded number of
   * callers, and bounds the copies made in one turn of the event loop when the execution answers
   * (each waiter gets its own copy of the rows).
   * @default 100
   */
  maxWaiters?: number;
}

/**
 * Query consolidation: identical reads in flight at the same time share one execution. `true`
 * (or an object of {@link ConsolidationSettings}) consolidates every eligible `read()` unless it
 * passes `consolidate: false`; `false` consolidates only the reads that pass `consolidate: true`.
 *
 * Eligible: a `read()` whose statement the classifier is sure is one plain read, outside
 * `db.session()`, without `after` and without `cache` (the cache coalesces its own reads), with
 * parameters pg can send. "Identical" means the same text, the same parameters as pg sends them
 * (`1` and `'1'` are one call), and the same `rowMode`, `binary`, `types` object, `name` and
 * `idempotent`.
 *
 * A read that joins an execution already running may see data as of that execution's start:
 * like a replica's answer, never newer than the call, and possibly older than a write this
 * caller committed while the execution was running. Reads that must see a write use `after`
 * or a session, which are never consolidated.
 * @default false
 */
export type ConsolidationOption = boolean | ConsolidationSettings;
