/**
 * The conservative read/write classifier behind `routing.queryRouting: 'auto'`. A statement goes
 * to a replica (a hot standby) only when this module is certain it is one plain read that a
 * standby can run and that changes nothing; every doubt answers 'write', because a write sent to
 * the primary by mistake costs a little load, while a "read" sent to a standby by mistake fails
 * there (SQLSTATE 25006 or 55000) or, worse, takes a lock, a sequence value or a notification on
 * the wrong server.
 *
 * One pass of a small tokenizer (./sql/lexer.ts) over the text; calls are checked against the
 * known side-effecting functions (./sql/side-effect-functions.ts). `classifySql` is a pure
 * function; `SqlClassifier` adds a bounded memo, one per pool, because applications send the
 * same texts over and over. Nothing here is shared between pools or between scans.
 *
 * What it cannot see: user-defined functions, views, rules or operators with side effects
 * (`SELECT my_func_that_inserts()`). Those fail on a standby with SQLSTATE 25006; send such
 * statements with `db.write()` or keep `queryRouting: 'primary'`.
 */

import {
  C_LPAREN,
  C_RPAREN,
  C_SEMI,
  followedByParen,
  SqlLexer,
  skipTrivia,
  T_BAD,
  T_END,
  T_PUNCT,
  T_QIDENT,
  T_WORD,
  wordIs,
} from './sql/lexer.js';
import { isSideEffectFunction } from './sql/side-effect-functions.js';

/** How `db.query()` may be routed under `routing.queryRouting: 'auto'`. */
export type SqlKind = 'read' | 'write';

/**
 * Most texts a `SqlClassifier` holds; when full, the oldest entry is evicted. Sized for the
 * distinct statement texts of a typical application (ORMs produce a few hundred), small enough
 * that the memo never matters for memory.
 */
export const CLASSIFY_SQL_CACHE_SIZE = 2000;

/**
 * Longest text (in UTF-16 code units) a `SqlClassifier` keeps. A key is retained for as long as
 * it is cached, so without this bound 2000 distinct large texts could pin tens of megabytes;
 * longer texts are classified on every call (measured at about 10 µs per kilobyte on a small VM).
 */
export const CLASSIFY_SQL_CACHE_MAX_TEXT_LENGTH = 4096;

/** Outcomes of the scan. EARLY_WRITE is decided by the first word alone and is not cached. */
const READ = 0;
const WRITE = 1;
const EARLY_WRITE = 2;

/**
 * Classifies one `db.query()` text as 'read' (safe for a hot standby) or 'write' (send to the
 * primary). Answers 'read' only for a single `SELECT`, `WITH ... SELECT` without data-modifying
 * CTEs, `SHOW`, `EXPLAIN` without `ANALYZE`, `VALUES` or `TABLE` statement that calls none of the
 * known side-effecting functions (sequences, advisory locks, xid assignment, `set_config`,
 * `pg_notify`, dblink, large-object writes, index and statistics maintenance, WAL control,
 * server administration) and does not lock rows (`FOR UPDATE`/`SHARE`) or create a table
 * (`SELECT ... INTO`). Pure: no cache, no shared state; see `SqlClassifier` for the memoised form.
 *
 * @example
 * classifySql('SELECT * FROM users WHERE id = $1'); // 'read'
 * classifySql('SELECT * FROM jobs FOR UPDATE SKIP LOCKED'); // 'write'
 * classifySql("SELECT nextval('order_id_seq')"); // 'write'
 */
export function classifySql(text: string): SqlKind {
  return scan(new SqlLexer(text)) === READ ? 'read' : 'write';
}

/**
 * `classifySql` with a bounded memo of its answers; a pool keeps one, so repeated texts cost one
 * Map lookup and no pool's traffic can evict another's entries.
 *
 * @example
 * const classifier = new SqlClassifier();
 * classifier.classify('SELECT 1'); // 'read', scanned
 * classifier.classify('SELECT 1'); // 'read', from the memo
 */
export class SqlClassifier {
  readonly #cache = new Map<string, SqlKind>();

  /** Same answer as `classifySql(text)`. */
  classify(text: string): SqlKind {
    const cached = this.#cache.get(text);
    if (cached !== undefined) return cached;
    const outcome = scan(new SqlLexer(text));
    const kind: SqlKind = outcome === READ ? 'read' : 'write';
    // Texts whose first word already says 'write' cost about as much to rescan as to look up,
    // and caching them would let a stream of distinct INSERT texts (inlined values) evict the
    // reads.
    if (outcome !== EARLY_WRITE && text.length <= CLASSIFY_SQL_CACHE_MAX_TEXT_LENGTH) {
      if (this.#cache.size >= CLASSIFY_SQL_CACHE_SIZE) {
        // Map iterates in insertion order, so the first key is the oldest: FIFO eviction keeps
        // the hot set warm without the per-hit bookkeeping an LRU would add to the lookup path.
        const oldest = this.#cache.keys().next().value;
        if (oldest !== undefined) this.#cache.delete(oldest);
      }
      this.#cache.set(text, kind);
    }
    return kind;
  }

  /** Number of texts currently cached; for tests and diagnostics. */
  get size(): number {
    return this.#cache.size;
  }

  /** Forgets every cached answer. */
  clear(): void {
    this.#cache.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Statement-level scan.

/** Leading keywords of statements that can be reads. */
const L_NONE = 0;
const L_SELECT = 1;
const L_WITH = 2;
const L_VALUES = 3;
const L_TABLE = 4;
const L_SHOW = 5;
const L_EXPLAIN = 6;

function leadKeyword(s: string, start: number, end: number): number {
  switch (end - start) {
    case 4:
      if (wordIs(s, start, end, 'with')) return L_WITH;
      if (wordIs(s, start, end, 'show')) return L_SHOW;
      return L_NONE;
    case 5:
      return wordIs(s, start, end, 'table') ? L_TABLE : L_NONE;
    case 6:
      if (wordIs(s, start, end, 'select')) return L_SELECT;
      if (wordIs(s, start, end, 'values')) return L_VALUES;
      return L_NONE;
    case 7:
      return wordIs(s, start, end, 'explain') ? L_EXPLAIN : L_NONE;
    default:
      return L_NONE;
  }
}

/** Words inside a read candidate that make it a write, or mark a row-locking clause. */
const B_NONE = 0;
const B_WRITE = 1;
const B_FOR = 2;

function bodyKeyword(s: string, start: number, end: number): number {
  switch (end - start) {
    case 3:
      return wordIs(s, start, end, 'for') ? B_FOR : B_NONE;
    case 4:
      // SELECT ... INTO creates a table.
      return wordIs(s, start, end, 'into') ? B_WRITE : B_NONE;
    case 5:
      return wordIs(s, start, end, 'merge') ? B_WRITE : B_NONE;
    case 6:
      // Data-modifying CTEs, FOR [NO KEY] UPDATE, and the main statement of WITH ... INSERT.
      // A column literally named "update" (unquoted) is also caught: harmless, it only costs a
      // trip to the primary.
      return wordIs(s, start, end, 'insert') ||
        wordIs(s, start, end, 'update') ||
        wordIs(s, start, end, 'delete')
        ? B_WRITE
        : B_NONE;
    case 7:
      // ANALYZE turns EXPLAIN into execution. UESCAPE lets a U&"..." name spell any function
      // with an escape character we would have to interpret; not worth trusting.
      return wordIs(s, start, end, 'analyze') ||
        wordIs(s, start, end, 'analyse') ||
        wordIs(s, start, end, 'uescape')
        ? B_WRITE
        : B_NONE;
    default:
      return B_NONE;
  }
}

/** After FOR: UPDATE, NO KEY UPDATE, SHARE, KEY SHARE lock rows. */
function isLockStrength(s: string, start: number, end: number): boolean {
  switch (end - start) {
    case 2:
      return wordIs(s, start, end, 'no');
    case 3:
      return wordIs(s, start, end, 'key');
    case 5:
      return wordIs(s, start, end, 'share');
    case 6:
      return wordIs(s, start, end, 'update');
    default:
      return false;
  }
}

function scan(lex: SqlLexer): number {
  const s = lex.text;
  // Leading parentheses: `(SELECT 1) UNION (SELECT 2)`.
  let kind = lex.next(0);
  while (kind === T_PUNCT && lex.char === C_LPAREN) kind = lex.next(lex.end);
  if (kind !== T_WORD) return EARLY_WRITE;
  const lead = leadKeyword(s, lex.start, lex.end);
  if (lead === L_NONE) return EARLY_WRITE;
  let i = lex.end;

  if (lead === L_EXPLAIN) {
    i = skipExplainOptions(lex, i);
    if (i < 0) return WRITE;
  }

  for (;;) {
    kind = lex.next(i);
    const start = lex.start;
    i = lex.end;
    switch (kind) {
      case T_END:
        return READ;
      case T_BAD:
        return WRITE;
      case T_WORD: {
        const word = bodyKeyword(s, start, i);
        if (word === B_WRITE) return WRITE;
        if (word === B_FOR) {
          // Peek without consuming, so the next word still gets its own checks.
          if (lex.next(i) === T_WORD && isLockStrength(s, lex.start, lex.end)) return WRITE;
        } else if (followedByParen(s, i) && isSideEffectFunction(s, start, i)) {
          return WRITE;
        }
        break;
      }
      case T_QIDENT:
        if (followedByParen(s, i)) {
          // A backslash means a U&"..." name with escapes: it could spell any trap.
          const backslash = s.indexOf('\\', start + 1);
          if (backslash >= 0 && backslash < i) return WRITE;
          if (isSideEffectFunction(s, start + 1, i - 1)) return WRITE;
        }
        break;
      case T_PUNCT:
        if (lex.char === C_SEMI) return onlyEmptyStatementsFollow(s, i) ? READ : WRITE;
        break;
      default:
        break;
    }
  }
}

/**
 * Consumes EXPLAIN's options (`(FORMAT JSON, COSTS off)` or `VERBOSE`) and checks that the
 * explained statement starts as a read. Returns the index after its leading keyword, or -1 for
 * 'write': ANALYZE in any form (even `ANALYZE false`, simpler than evaluating booleans), a quoted
 * option name (`("analyze")` is ANALYZE), or a target such as EXECUTE, INSERT or CREATE TABLE AS.
 */
function skipExplainOptions(lex: SqlLexer, i: number): number {
  const s = lex.text;
  let kind = lex.next(i);
  if (kind === T_PUNCT && lex.char === C_LPAREN) {
    let depth = 1;
    while (depth > 0) {
      kind = lex.next(lex.end);
      if (kind === T_END || kind === T_BAD || kind === T_QIDENT) return -1;
      if (kind === T_PUNCT) {
        if (lex.char === C_LPAREN) depth++;
        else if (lex.char === C_RPAREN) depth--;
      } else if (
        kind === T_WORD &&
        (wordIs(s, lex.start, lex.end, 'analyze') || wordIs(s, lex.start, lex.end, 'analyse'))
      ) {
        return -1;
      }
    }
    kind = lex.next(lex.end);
  }
  while (kind === T_WORD && wordIs(s, lex.start, lex.end, 'verbose')) kind = lex.next(lex.end);
  while (kind === T_PUNCT && lex.char === C_LPAREN) kind = lex.next(lex.end);
  if (kind !== T_WORD) return -1;
  const target = leadKeyword(s, lex.start, lex.end);
  if (target === L_NONE || target === L_SHOW || target === L_EXPLAIN) return -1;
  return lex.end;
}

/** After a `;`: true when only whitespace, comments and further `;` remain. */
function onlyEmptyStatementsFollow(s: string, i: number): boolean {
  for (;;) {
    i = skipTrivia(s, i);
    if (i < 0) return false;
    if (i >= s.length) return true;
    if (s.charCodeAt(i) !== C_SEMI) return false;
    i++;
  }
}
