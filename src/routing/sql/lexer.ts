/**
 * The small SQL tokenizer behind the read/write classifier. String literals, dollar quotes,
 * quoted identifiers and comments are skipped exactly as PostgreSQL's lexer skips them, so
 * keywords inside them cannot fool the classifier; words are compared in place (no substrings
 * except a tagged dollar quote's delimiter, no regex, no backtracking; linear in the text).
 *
 * All state of a scan lives in one `SqlLexer` object, so scans never share anything and the
 * module holds only constants.
 */

export const C_TAB = 9;
export const C_LF = 10;
export const C_CR = 13;
export const C_SPACE = 32;
export const C_DQUOTE = 34;
export const C_DOLLAR = 36;
export const C_QUOTE = 39;
export const C_LPAREN = 40;
export const C_RPAREN = 41;
export const C_STAR = 42;
export const C_MINUS = 45;
export const C_DOT = 46;
export const C_SLASH = 47;
export const C_0 = 48;
export const C_9 = 57;
export const C_SEMI = 59;
export const C_BACKSLASH = 92;
export const C_UNDERSCORE = 95;

/** Token kinds returned by `SqlLexer.next()`. */
export const T_END = 0;
/** Unquoted identifier or keyword: `start`..`end`. */
export const T_WORD = 1;
/** Double-quoted identifier, quotes included: `start`..`end`. */
export const T_QIDENT = 2;
/** One punctuation or operator character, in `char`. */
export const T_PUNCT = 3;
/** A literal (string, dollar quote, number) or a `$n` parameter: nothing to examine. */
export const T_LITERAL = 4;
/** Unterminated literal or comment, or a construct whose meaning depends on server settings. */
export const T_BAD = 5;

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

function isDigit(c: number): boolean {
  return c >= C_0 && c <= C_9;
}

/**
 * Index of the first character at or after `i` that is not whitespace or a comment, or -1 when a
 * block comment is unterminated. Block comments nest, as in PostgreSQL.
 */
export function skipTrivia(s: string, i: number): number {
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

/** Case-insensitive comparison of `s[start, end)` with the lower-case ASCII `word`. */
export function wordIs(s: string, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  return prefixIs(s, start, word);
}

/** Case-insensitive: does `s` at `start` begin with the lower-case ASCII `word`? */
export function prefixIs(s: string, start: number, word: string): boolean {
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
export function containsWord(s: string, start: number, end: number, word: string): boolean {
  const last = end - word.length;
  for (let k = start; k <= last; k++) if (prefixIs(s, k, word)) return true;
  return false;
}

/** Is the next token after `i` an opening parenthesis, i.e. was the word before it a call? */
export function followedByParen(s: string, i: number): boolean {
  const j = skipTrivia(s, i);
  return j >= 0 && s.charCodeAt(j) === C_LPAREN;
}

/**
 * One scan over one text. `next(i)` reads the token at or after `i` and returns its kind; the
 * token's bounds are then in `start`/`end` (and a punctuation character in `char`). Fields
 * instead of returned objects, so that a scan allocates only this one object.
 */
export class SqlLexer {
  /** Index of the current token's first character. */
  start = 0;
  /** Index just past the current token. */
  end = 0;
  /** The character of a `T_PUNCT` token. */
  char = 0;

  constructor(readonly text: string) {}

  /**
   * The cases follow PostgreSQL's scan.l closely enough that both agree on where literals,
   * quoted identifiers and comments begin and end; finer distinctions (operators, number
   * formats) do not matter here and are simplified.
   */
  next(i: number): number {
    const s = this.text;
    i = skipTrivia(s, i);
    if (i < 0) return T_BAD;
    this.start = i;
    const n = s.length;
    if (i >= n) {
      this.end = i;
      return T_END;
    }
    const c = s.charCodeAt(i);
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentCont(s.charCodeAt(j))) j++;
      // `E'...'` (either case) is a backslash-escape literal; any other prefix (B, X, N, U&)
      // keeps the standard quoting rules, which the generic literal case below handles.
      if (j === i + 1 && (c | 0x20) === 101 && s.charCodeAt(j) === C_QUOTE) {
        return this.literal(endOfEscapeString(s, j));
      }
      this.end = j;
      return T_WORD;
    }
    if (c === C_QUOTE) return this.literal(endOfString(s, i));
    if (c === C_DQUOTE) {
      const end = endOfQuotedIdent(s, i);
      if (end < 0) return T_BAD;
      this.end = end;
      return T_QIDENT;
    }
    if (c === C_DOLLAR) return this.dollar(i);
    if (isDigit(c) || (c === C_DOT && isDigit(s.charCodeAt(i + 1)))) {
      // Digits, `_` separators and decimal points only: letters start a new token, as in the
      // lexers before PostgreSQL 15, so `1into t` still shows its INTO.
      let j = i + 1;
      while (j < n) {
        const d = s.charCodeAt(j);
        if (!(isDigit(d) || d === C_DOT || d === C_UNDERSCORE)) break;
        j++;
      }
      this.end = j;
      return T_LITERAL;
    }
    this.char = c;
    this.end = i + 1;
    return T_PUNCT;
  }

  private literal(end: number): number {
    if (end < 0) return T_BAD;
    this.end = end;
    return T_LITERAL;
  }

  /** A `$n` parameter or a `$tag$...$tag$` dollar-quoted literal starting at `i`. */
  private dollar(i: number): number {
    const s = this.text;
    const n = s.length;
    let j = i + 1;
    if (isDigit(s.charCodeAt(j))) {
      while (j < n && isDigit(s.charCodeAt(j))) j++;
      this.end = j;
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
    this.end = close + delimiter.length;
    return T_LITERAL;
  }
}
