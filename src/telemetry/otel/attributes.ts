/**
 * The attributes this library puts on metrics and spans, by the OpenTelemetry semantic
 * conventions for database clients. Every value here comes from a closed set or from the
 * endpoint's configuration (its name, host, port and database): never a parameter value, never
 * a user or password, never an error message (PostgreSQL quotes values in some of them:
 * `invalid input syntax for type integer: "..."`).
 */
import type { ObservedEndpoint } from '../observer.js';
import type { OtelAttributes } from './api-types.js';

export const DB_SYSTEM = 'postgresql';

/**
 * The first keyword of each PostgreSQL command (the SQL Commands chapter of the manual). A
 * statement's `db.operation.name` is its first word only when it is one of these, so the
 * attribute stays low-cardinality and cannot carry anything from the text beyond a keyword.
 */
const COMMANDS = new Set([
  'ABORT',
  'ALTER',
  'ANALYSE',
  'ANALYZE',
  'BEGIN',
  'CALL',
  'CHECKPOINT',
  'CLOSE',
  'CLUSTER',
  'COMMENT',
  'COMMIT',
  'COPY',
  'CREATE',
  'DEALLOCATE',
  'DECLARE',
  'DELETE',
  'DISCARD',
  'DO',
  'DROP',
  'END',
  'EXECUTE',
  'EXPLAIN',
  'FETCH',
  'GRANT',
  'IMPORT',
  'INSERT',
  'LISTEN',
  'LOAD',
  'LOCK',
  'MERGE',
  'MOVE',
  'NOTIFY',
  'PREPARE',
  'REASSIGN',
  'REFRESH',
  'REINDEX',
  'RELEASE',
  'RESET',
  'REVOKE',
  'ROLLBACK',
  'SAVEPOINT',
  'SECURITY',
  'SELECT',
  'SET',
  'SHOW',
  'START',
  'TABLE',
  'TRUNCATE',
  'UNLISTEN',
  'UPDATE',
  'VACUUM',
  'VALUES',
  'WITH',
]);

/** The longest command keyword (CHECKPOINT, DEALLOCATE): a longer word is not one. */
const LONGEST_COMMAND = 10;

const isLetter = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
/** PostgreSQL's identifier characters after the first: letters, digits, `_`, `$`, non-ASCII. */
const isIdentCont = (c: number) =>
  isLetter(c) || (c >= 48 && c <= 57) || c === 95 || c === 36 || c >= 128;

/** Index past the whitespace, comments and opening parentheses at `i` (PostgreSQL's rules). */
function skipToWord(text: string, i: number): number {
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 32 || (c >= 9 && c <= 13) || c === 40) {
      i++;
    } else if (c === 45 && text.charCodeAt(i + 1) === 45) {
      const eol = text.indexOf('\n', i + 2);
      i = eol < 0 ? n : eol + 1;
    } else if (c === 47 && text.charCodeAt(i + 1) === 42) {
      // Block comments nest in PostgreSQL.
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (text.charCodeAt(i) === 47 && text.charCodeAt(i + 1) === 42) {
          depth++;
          i += 2;
        } else if (text.charCodeAt(i) === 42 && text.charCodeAt(i + 1) === 47) {
          depth--;
          i += 2;
        } else {
          i++;
        }
      }
    } else {
      return i;
    }
  }
  return i;
}

/**
 * Recent texts and their command (null for none): applications send a few texts over and over,
 * and a text's hash is cached in the string, so a hit costs one lookup. Bounded in entries and in
 * the length of the texts it holds on to.
 */
const recent = new Map<string, string | null>();
const RECENT_LIMIT = 256;
const RECENT_TEXT_LIMIT = 2_048;

/**
 * The statement's command keyword, upper-cased (`SELECT`, `INSERT`, `WITH`, ...), or undefined
 * when its first word is no PostgreSQL command (or there is no text).
 */
export function operationName(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const known = recent.get(text);
  if (known !== undefined) return known ?? undefined;
  const operation = commandOf(text);
  if (text.length <= RECENT_TEXT_LIMIT) {
    if (recent.size >= RECENT_LIMIT) recent.clear();
    recent.set(text, operation ?? null);
  }
  return operation;
}

function commandOf(text: string): string | undefined {
  const start = skipToWord(text, 0);
  let end = start;
  while (end < text.length && end - start <= LONGEST_COMMAND && isLetter(text.charCodeAt(end))) {
    end++;
  }
  // A keyword ends where the identifier does: `select_all` or `select2` is no SELECT.
  if (end === start || end - start > LONGEST_COMMAND || isIdentCont(text.charCodeAt(end))) {
    return undefined;
  }
  const word = text.slice(start, end).toUpperCase();
  return COMMANDS.has(word) ? word : undefined;
}

/**
 * Codes that say what failed and come from closed sets: a SQLSTATE (`23505`), this library's
 * (`E_CIRCUIT_OPEN`), a system error (`ECONNRESET`) or Node's (`ERR_SOCKET_CLOSED`).
 */
const ERROR_CODE = /^(?:[0-9A-Z]{5}|E_[A-Z_]{2,40}|E[A-Z]{2,20}|ERR_[A-Z0-9_]{2,60})$/;
const SQLSTATE = /^[0-9A-Z]{5}$/;
/** Error names worth a series of their own when an error has no code. */
const ERROR_NAMES = new Set([
  'AbortError',
  'Error',
  'RangeError',
  'ReferenceError',
  'SyntaxError',
  'TimeoutError',
  'TypeError',
]);

/**
 * `error.type` of a failed call: its code when it has one from a closed set (a SQLSTATE, as the
 * conventions advise, or this library's, a system error's or Node's), else a built-in error
 * name, else `_OTHER`. Never its message.
 */
export function errorType(err: unknown): string {
  const code = errorCode(err);
  if (code !== undefined) return code;
  const name = (err as { name?: unknown } | null | undefined)?.name;
  return typeof name === 'string' && ERROR_NAMES.has(name) ? name : '_OTHER';
}

/** The error's code when it is one from a closed set (see ERROR_CODE), else undefined. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && ERROR_CODE.test(code) ? code : undefined;
}

/** `db.response.status_code`: the SQLSTATE of an error PostgreSQL sent, else undefined. */
export function responseStatusCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
}

export const POOL_NAME = 'db.client.connection.pool.name';

/**
 * The attribute that names an endpoint's connection pool on the per-call histograms: that one
 * only, since the SDK hashes every attribute of every point it records.
 */
export function poolAttributes(endpoint: ObservedEndpoint): OtelAttributes {
  return { [POOL_NAME]: endpoint.name };
}

/** The attributes that say where a call ran: the database system and the endpoint's server. */
export function serverAttributes(endpoint: ObservedEndpoint): Record<string, string | number> {
  const attributes: Record<string, string | number> = { 'db.system.name': DB_SYSTEM };
  const {
    'server.address': address,
    'server.port': port,
    'db.namespace': namespace,
  } = endpoint.attributes;
  if (namespace !== undefined) attributes['db.namespace'] = namespace;
  if (address !== undefined) attributes['server.address'] = address;
  if (port !== undefined) attributes['server.port'] = port;
  return attributes;
}
