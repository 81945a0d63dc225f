/**
 * The conservative read/write classifier behind `routing.queryRouting: 'auto'`. A statement goes
 * to a replica (a hot standby) only when this module is certain it is one plain read that a
 * standby can run and that changes nothing; every doubt answers 'write', because a write sent to
 * the primary by mistake costs a little load, while a "read" sent to a standby by mistake fails
 * there (SQLSTATE 25006) or, worse, takes a lock, a sequence value or a notification on the wrong
 * server.
 *
 * One pass of a small tokenizer over the text: string literals, dollar quotes, quoted identifiers
 * and comments are skipped exactly as PostgreSQL's lexer skips them, so keywords inside them
 * cannot fool it, and the remaining words are compared in place (no substrings except a tagged
 * dollar quote's delimiter, no regex, no backtracking; linear in the length of the text).
 * Results are memoised in a bounded Map, because applications send the same texts over and over.
 *
 * What it cannot see: user-defined functions, views, rules or operators with side effects
 * (`SELECT my_func_that_inserts()`). Those fail on a standby with SQLSTATE 25006; send such
 * statements with `db.write()` or keep `queryRouting: 'primary'`.
 */

/** How `db.query()` may be routed under `routing.queryRouting: 'auto'`. */
export type SqlKind = 'read' | 'write';

/**
 * Most texts the classification cache holds; when full, the oldest entry is evicted. Sized for
 * the distinct statement texts of a typical application (ORMs produce a few hundred), small
 * enough that the cache never matters for memory.
 */
export const CLASSIFY_SQL_CACHE_SIZE = 2000;

/**
 * Longest text (in UTF-16 code units) the cache keeps. A key is retained for as long as it is
 * cached, so without this bound 2000 distinct large texts could pin tens of megabytes; longer
 * texts are classified on every call (measured at about 10 µs per kilobyte on a small VM).
 */
export const CLASSIFY_SQL_CACHE_MAX_TEXT_LENGTH = 4096;

const cache = new Map<string, SqlKind>();

/** Outcomes of the scan. EARLY_WRITE is decided by the first word alone and is not cached. */
const READ = 0;
const WRITE = 1;
const EARLY_WRITE = 2;

/**
 * Classifies one `db.query()` text as 'read' (safe for a hot standby) or 'write' (send to the
 * primary). Answers 'read' only for a single `SELECT`, `WITH ... SELECT` without data-modifying
 * CTEs, `SHOW`, `EXPLAIN` without `ANALYZE`, `VALUES` or `TABLE` statement that calls none of the
 * known side-effecting functions (sequences, advisory locks, xid assignment, `set_config`,
 * `pg_notify`, dblink, large-object writes, server administration) and does not lock rows
 * (`FOR UPDATE`/`SHARE`) or create a table (`SELECT ... INTO`). Repeated texts cost one Map lookup.
 *
 * @example
 * classifySql('SELECT * FROM users WHERE id = $1'); // 'read'
 * classifySql('SELECT * FROM jobs FOR UPDATE SKIP LOCKED'); // 'write'
 * classifySql("SELECT nextval('order_id_seq')"); // 'write'
 */
export function classifySql(text: string): SqlKind {
  const cached = cache.get(text);
  if (cached !== undefined) return cached;
  const outcome = scan(text);
  const kind: SqlKind = outcome === READ ? 'read' : 'write';
  // Texts whose first word already says 'write' cost about as much to rescan as to look up, and
  // caching them would let a stream of distinct INSERT texts (inlined values) evict the reads.
  if (outcome !== EARLY_WRITE && text.length <= CLASSIFY_SQL_CACHE_MAX_TEXT_LENGTH) {
    if (cache.size >= CLASSIFY_SQL_CACHE_SIZE) {
      // Map iterates in insertion order, so the first key is the oldest: FIFO eviction keeps the
      // hot set warm without the per-hit bookkeeping an LRU would add to the lookup path.
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(text, kind);
  }
  return kind;
}

/** Number of texts currently cached; for tests and diagnostics. */
export function classifySqlCacheSize(): number {
  return cache.size;
}

/** Empties the classification cache; for tests. */
export function clearClassifySqlCache(): void {
  cache.clear();
}

// ---------------------------------------------------------------------------------------------
// Tokenizer. State lives in module variables instead of returned objects so that scanning
// allocates nothing; classifySql is synchronous and never re-entered, so sharing is safe.

const C_TAB = 9;
const C_LF = 10;
const C_CR = 13;
const C_SPACE = 32;
const C_DQUOTE = 34;
const C_DOLLAR = 36;
const C_QUOTE = 39;
const C_LPAREN = 40;
const C_RPAREN = 41;
const C_STAR = 42;
const C_MINUS = 45;
const C_DOT = 46;
const C_SLASH = 47;
const C_0 = 48;
const C_9 = 57;
const C_SEMI = 59;
const C_BACKSLASH = 92;
const C_UNDERSCORE = 95;

/** Token kinds returned by `next()`. */
const T_END = 0;
/** Unquoted identifier or keyword: `tokStart`..`tokEnd`. */
const T_WORD = 1;
/** Double-quoted identifier, quotes included: `tokStart`..`tokEnd`. */
const T_QIDENT = 2;
/** One punctuation or operator character, in `tokChar`. */
const T_PUNCT = 3;
/** A literal (string, dollar quote, number) or a `$n` parameter: nothing to examine. */
const T_LITERAL = 4;
/** Unterminated literal or comment, or a construct whose meaning depends on server settings. */
const T_BAD = 5;

let tokStart = 0;
let tokEnd = 0;
let tokChar = 0;

/** Space, and \t \n \v \f \r (9..13), PostgreSQL's whitespace set. */
function isSpace(c: number): boolean {
  return c === C_SPACE || (c >= C_TAB && c <= C_CR);
}

/** PostgreSQL's `ident_start`: letters, underscore and every non-ASCII character. */
function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === C_UNDERSCORE || c >= 128;
}

/** PostgreSQL's `ident_cont`: `ident_start`, digits and `$`. */
function isIdentCont(c: number): boolean {
  return isIdentStart(c) || (c >= C_0 && c <= C_9) || c === C_DOLLAR;
}

/**
 * Index of the first character at or after `i` that is not whitespace or a comment, or -1 when a
 * block comment is unterminated. Block comments nest, as in PostgreSQL.
 */
function skipTrivia(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      i++;
    } else if (c === C_MINUS && s.charCodeAt(i + 1) === C_MINUS) {
      i += 2;
      while (i < n) {
        const d = s.charCodeAt(i);
        if (d === C_LF || d === C_CR) break;
        i++;
      }
    } else if (c === C_SLASH && s.charCodeAt(i + 1) === C_STAR) {
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= n) return -1;
        const d = s.charCodeAt(i);
        if (d === C_SLASH && s.charCodeAt(i + 1) === C_STAR) {
          depth++;
          i += 2;
        } else if (d === C_STAR && s.charCodeAt(i + 1) === C_SLASH) {
          depth--;
          i += 2;
        } else {
          i++;
        }
      }
    } else {
      break;
    }
  }
  return i;
}

/**
 * End of a standard `'...'` literal opened at `i` (`''` escapes a quote), or -1. A quote right
 * after a backslash also gives -1: with the (deprecated) `standard_conforming_strings = off`,
 * `\'` escapes the quote and the server would see a different statement than we do, so such
 * text is never trusted. Elsewhere the two settings agree on where a literal ends.
 */
function endOfString(s: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = s.indexOf("'", j);
    if (q < 0 || s.charCodeAt(q - 1) === C_BACKSLASH) return -1;
    if (s.charCodeAt(q + 1) !== C_QUOTE) return q + 1;
    j = q + 2;
  }
}

/** End of an `E'...'` literal whose quote is at `i`: backslash escapes anything, `''` a quote. */
function endOfEscapeString(s: string, i: number): number {
  const n = s.length;
  let j = i + 1;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (c === C_BACKSLASH) {
      j += 2;
    } else if (c === C_QUOTE) {
      if (s.charCodeAt(j + 1) !== C_QUOTE) return j + 1;
      j += 2;
    } else {
      j++;
    }
  }
  return -1;
}

/** End of a `"..."` identifier opened at `i` (`""` escapes a quote), or -1. */
function endOfQuotedIdent(s: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = s.indexOf('"', j);
    if (q < 0) return -1;
    if (s.charCodeAt(q + 1) !== C_DQUOTE) return q + 1;
    j = q + 2;
  }
}

/**
 * Reads the token at or after `i` into `tokStart`/`tokEnd`/`tokChar` and returns its kind. The
 * cases follow PostgreSQL's scan.l closely enough that both agree on where literals, quoted
 * identifiers and comments begin and end; finer distinctions (operators, number formats) do not
 * matter here and are simplified.
 */
function next(s: string, i: number): number {
  i = skipTrivia(s, i);
  if (i < 0) return T_BAD;
  tokStart = i;
  const n = s.length;
  if (i >= n) {
    tokEnd = i;
    return T_END;
  }
  const c = s.charCodeAt(i);
  if (isIdentStart(c)) {
    let j = i + 1;
    while (j < n && isIdentCont(s.charCodeAt(j))) j++;
    // `E'...'` (either case) is a backslash-escape literal; any other prefix (B, X, N, U&) keeps
    // the standard quoting rules, which the generic literal case below handles.
    if (j === i + 1 && (c | 0x20) === 101 && s.charCodeAt(j) === C_QUOTE) {
      const end = endOfEscapeString(s, j);
      if (end < 0) return T_BAD;
      tokEnd = end;
      return T_LITERAL;
    }
    tokEnd = j;
    return T_WORD;
  }
  if (c === C_QUOTE) {
    const end = endOfString(s, i);
    if (end < 0) return T_BAD;
    tokEnd = end;
    return T_LITERAL;
  }
  if (c === C_DQUOTE) {
    const end = endOfQuotedIdent(s, i);
    if (end < 0) return T_BAD;
    tokEnd = end;
    return T_QIDENT;
  }
  if (c === C_DOLLAR) return dollar(s, i);
  if ((c >= C_0 && c <= C_9) || (c === C_DOT && isDigit(s.charCodeAt(i + 1)))) {
    // Digits, `_` separators and decimal points only: letters start a new token, as in the
    // lexers before PostgreSQL 15, so `1into t` still shows its INTO.
    let j = i + 1;
    while (j < n) {
      const d = s.charCodeAt(j);
      if (!(isDigit(d) || d === C_DOT || d === C_UNDERSCORE)) break;
      j++;
    }
    tokEnd = j;
    return T_LITERAL;
  }
  tokChar = c;
  tokEnd = i + 1;
  return T_PUNCT;
}

function isDigit(c: number): boolean {
  return c >= C_0 && c <= C_9;
}

/** A `$n` parameter or a `$tag$...$tag$` dollar-quoted literal starting at `i`. */
function dollar(s: string, i: number): number {
  const n = s.length;
  let j = i + 1;
  if (isDigit(s.charCodeAt(j))) {
    while (j < n && isDigit(s.charCodeAt(j))) j++;
    tokEnd = j;
    return T_LITERAL;
  }
  // Tags are identifier-like but may not contain `$`.
  if (j < n && isIdentStart(s.charCodeAt(j))) {
    j++;
    while (j < n) {
      const d = s.charCodeAt(j);
      if (!(isIdentStart(d) || isDigit(d))) break;
      j++;
    }
  }
  if (s.charCodeAt(j) !== C_DOLLAR) return T_BAD;
  // The untagged `$$` form, by far the commonest, needs no delimiter string.
  const delimiter = j === i + 1 ? '$$' : s.slice(i, j + 1);
  const close = s.indexOf(delimiter, j + 1);
  if (close < 0) return T_BAD;
  tokEnd = close + delimiter.length;
  return T_LITERAL;
}

/** Case-insensitive comparison of `s[start, end)` with the lower-case ASCII `word`. */
function wordIs(s: string, start: number, end: number, word: string): boolean {
  const len = word.length;
  if (end - start !== len) return false;
  return prefixIs(s, start, word);
}

/** Case-insensitive: does `s` at `start` begin with the lower-case ASCII `word`? */
function prefixIs(s: string, start: number, word: string): boolean {
  const len = word.length;
  if (start + len > s.length) return false;
  for (let k = 0; k < len; k++) {
    // `| 0x20` folds A-Z onto a-z and maps `_` and digits onto themselves consistently; no
    // identifier character other than the intended pair collides.
    if ((s.charCodeAt(start + k) | 0x20) !== (word.charCodeAt(k) | 0x20)) return false;
  }
  return true;
}

/** Case-insensitive: does `s[start, end)` contain the lower-case ASCII `word`? */
function containsWord(s: string, start: number, end: number, word: string): boolean {
  const last = end - word.length;
  for (let k = start; k <= last; k++) if (prefixIs(s, k, word)) return true;
  return false;
}

/** Is the next token after `i` an opening parenthesis, i.e. was the word before it a call? */
function followedByParen(s: string, i: number): boolean {
  const j = skipTrivia(s, i);
  return j >= 0 && s.charCodeAt(j) === C_LPAREN;
}

// ---------------------------------------------------------------------------------------------
// Function calls that must not run on a standby: they write, take locks, assign transaction ids,
// change session state, reach other servers, or act on the server itself. Matched on the name
// immediately before `(`, so `nextval_count` is a plain column and `public.nextval(` or
// `"nextval"(` are traps (a schema-qualified or quoted name might be a harmless user function;
// sending it to the primary is the safe mistake).

/** Whole names. */
const TRAP_FUNCTIONS: readonly string[] = [
  'nextval',
  'setval',
  // currval/lastval read only this session's last nextval(), which happened on the primary.
  'currval',
  'lastval',
  'txid_current',
  'pg_current_xact_id',
  'set_config',
  'pg_notify',
  'lowrite',
  'loread',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_log_backend_memory_contexts',
  'pg_import_system_collations',
  'pg_walfile_name',
  'pg_walfile_name_offset',
];

/** Name prefixes: families of functions that all qualify. */
const TRAP_PREFIXES: readonly string[] = [
  // Large objects: lo_create, lo_import, lo_unlink, lo_put, lo_truncate, ... all write or need
  // a transaction; lo_get alone would be safe but is not worth an exception.
  'lo_',
  'dblink',
  'pg_stat_reset',
  'pg_replication_origin',
  // pg_current_wal_lsn() and friends raise "recovery is in progress" on a standby.
  'pg_current_wal',
  'pg_wal_replay_',
  'pg_logical_',
  'pg_file_',
];

/** Substrings of `pg_*` names: pg_advisory_lock, pg_try_advisory_xact_lock_shared, ... */
const TRAP_PG_INFIXES: readonly string[] = ['advisory', 'replication_slot'];

function isTrapFunction(s: string, start: number, end: number): boolean {
  // Every trap name starts with one of these letters; most calls (count, coalesce, now, ...)
  // are rejected here or on their length below.
  const c = s.charCodeAt(start) | 0x20;
  if (c !== 110 && c !== 115 && c !== 99 && c !== 108 && c !== 116 && c !== 112 && c !== 100) {
    return false;
  }
  for (const name of TRAP_FUNCTIONS) if (wordIs(s, start, end, name)) return true;
  for (const prefix of TRAP_PREFIXES) {
    if (end - start >= prefix.length && prefixIs(s, start, prefix)) return true;
  }
  if (end - start > 3 && prefixIs(s, start, 'pg_')) {
    for (const infix of TRAP_PG_INFIXES) if (containsWord(s, start + 3, end, infix)) return true;
  }
  return false;
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

function scan(s: string): number {
  // Leading parentheses: `(SELECT 1) UNION (SELECT 2)`.
  let kind = next(s, 0);
  while (kind === T_PUNCT && tokChar === C_LPAREN) kind = next(s, tokEnd);
  if (kind !== T_WORD) return EARLY_WRITE;
  const lead = leadKeyword(s, tokStart, tokEnd);
  if (lead === L_NONE) return EARLY_WRITE;
  let i = tokEnd;

  if (lead === L_EXPLAIN) {
    i = skipExplainOptions(s, i);
    if (i < 0) return WRITE;
  }

  for (;;) {
    kind = next(s, i);
    const start = tokStart;
    i = tokEnd;
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
          if (next(s, i) === T_WORD && isLockStrength(s, tokStart, tokEnd)) return WRITE;
        } else if (followedByParen(s, i) && isTrapFunction(s, start, i)) {
          return WRITE;
        }
        break;
      }
      case T_QIDENT:
        if (followedByParen(s, i)) {
          // A backslash means a U&"..." name with escapes: it could spell any trap.
          const backslash = s.indexOf('\\', start + 1);
          if (backslash >= 0 && backslash < i) return WRITE;
          if (isTrapFunction(s, start + 1, i - 1)) return WRITE;
        }
        break;
      case T_PUNCT:
        if (tokChar === C_SEMI) return onlyEmptyStatementsFollow(s, i) ? READ : WRITE;
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
function skipExplainOptions(s: string, i: number): number {
  let kind = next(s, i);
  if (kind === T_PUNCT && tokChar === C_LPAREN) {
    let depth = 1;
    while (depth > 0) {
      kind = next(s, tokEnd);
      if (kind === T_END || kind === T_BAD || kind === T_QIDENT) return -1;
      if (kind === T_PUNCT) {
        if (tokChar === C_LPAREN) depth++;
        else if (tokChar === C_RPAREN) depth--;
      } else if (
        kind === T_WORD &&
        (wordIs(s, tokStart, tokEnd, 'analyze') || wordIs(s, tokStart, tokEnd, 'analyse'))
      ) {
        return -1;
      }
    }
    kind = next(s, tokEnd);
  }
  while (kind === T_WORD && wordIs(s, tokStart, tokEnd, 'verbose')) kind = next(s, tokEnd);
  while (kind === T_PUNCT && tokChar === C_LPAREN) kind = next(s, tokEnd);
  if (kind !== T_WORD) return -1;
  const target = leadKeyword(s, tokStart, tokEnd);
  if (target === L_NONE || target === L_SHOW || target === L_EXPLAIN) return -1;
  return tokEnd;
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
