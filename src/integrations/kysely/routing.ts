/**
 * Which Kysely queries may run on a replica: decided by the query's operation node, as the
 * kysely-replication package does, and then by the library's conservative SQL classifier, so a
 * select that locks rows, writes through a CTE or calls a side-effecting function stays on the
 * primary. `onPrimary(kysely)` marks every query of a Kysely instance for the primary.
 */
import type {
  CompiledQuery,
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely';
import { classifySql, type SqlKind } from '../../routing/classify-sql.js';

/** Set on a query's root node by `onPrimary()`: the query goes to the primary whatever it is. */
const ON_PRIMARY = Symbol.for('resilient-pool/kysely.onPrimary');

/** Row-locking clauses: `FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`, `FOR KEY SHARE`. */
const LOCKING = new Set(['ForUpdate', 'ForNoKeyUpdate', 'ForShare', 'ForKeyShare']);

interface ModifierLike {
  readonly modifier?: string;
  readonly rawModifier?: unknown;
}

function locksRows(modifiers: ReadonlyArray<ModifierLike> | undefined): boolean {
  if (modifiers === undefined) return false;
  // A raw modifier (`.modifyEnd(sql\`for update\`)`) may lock: only the classifier can tell,
  // and it sees the SQL; a known locking modifier needs no second look.
  return modifiers.some((m) => m.modifier !== undefined && LOCKING.has(m.modifier));
}

/**
 * True when `query` may run on a hot standby: a Kysely select (a `SelectQueryNode`, not a raw
 * `sql` query, not DDL, not an insert/update/delete/merge), without a row-locking clause, whose
 * SQL the library's classifier also calls a plain read (no data-modifying CTE, no `nextval`,
 * advisory lock, `set_config` or other known side-effecting call). Every doubt answers false.
 * Queries marked with `onPrimary()` answer false.
 *
 * @example
 * isReplicaSafeQuery(kysely.selectFrom('users').selectAll().compile()); // true
 * isReplicaSafeQuery(kysely.selectFrom('jobs').selectAll().forUpdate().compile()); // false
 */
export function isReplicaSafeQuery(query: CompiledQuery): boolean {
  return replicaSafe(query, classifySql);
}

/** `isReplicaSafeQuery` with the classifier to use (the dialect's memoised one). */
export function replicaSafe(query: CompiledQuery, classify: (sql: string) => SqlKind): boolean {
  const node = query.query as RootOperationNode & {
    readonly [ON_PRIMARY]?: true;
    readonly endModifiers?: ReadonlyArray<ModifierLike>;
  };
  if (node.kind !== 'SelectQueryNode' || node[ON_PRIMARY] === true) return false;
  if (locksRows(node.endModifiers)) return false;
  return classify(query.sql) === 'read';
}

class OnPrimaryPlugin implements KyselyPlugin {
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    // Kysely's nodes are frozen: a copy carries the mark, and the compiler ignores it.
    return Object.freeze({ ...args.node, [ON_PRIMARY]: true as const });
  }

  transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(args.result);
  }
}

const ON_PRIMARY_PLUGIN = new OnPrimaryPlugin();

/**
 * The same Kysely instance with every query sent to the primary, for a read that must see a
 * write just made outside a `db.session()`, or a select that calls a function with side effects
 * the classifier cannot know about (your own `my_func_that_inserts()`).
 *
 * @example
 * await kysely.insertInto('users').values(user).execute();
 * const fresh = await onPrimary(kysely).selectFrom('users').selectAll().execute();
 */
export function onPrimary<K extends { withPlugin(plugin: KyselyPlugin): K }>(kysely: K): K {
  return kysely.withPlugin(ON_PRIMARY_PLUGIN);
}
