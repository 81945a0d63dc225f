import { describe, expect, it } from 'vitest';
import {
  CLASSIFY_SQL_CACHE_MAX_TEXT_LENGTH,
  CLASSIFY_SQL_CACHE_SIZE,
  classifySql,
  SqlClassifier,
} from '../../src/routing/classify-sql.js';

const reads: ReadonlyArray<readonly [string, string]> = [
  ['plain select', 'SELECT * FROM users WHERE id = $1'],
  ['lower case', 'select 1'],
  ['mixed case', 'SeLeCt 1'],
  ['leading whitespace', ' \t\r\n\f SELECT 1'],
  ['leading line comment', '-- fetch users\nSELECT * FROM users'],
  ['leading block comment', '/* a */ SELECT 1'],
  ['leading nested block comment', '/* outer /* inner */ still comment */SELECT 1'],
  ['leading parentheses', '(SELECT 1) UNION (SELECT 2)'],
  ['nested leading parentheses', '( ( SELECT 1 ) )'],
  ['with select', 'WITH x AS (SELECT 1 AS a) SELECT a FROM x'],
  ['with recursive', 'WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t) TABLE t'],
  ['with materialized', 'WITH x AS MATERIALIZED (SELECT 1) SELECT * FROM x'],
  ['show', 'SHOW search_path'],
  ['show all', 'show all'],
  ['explain', 'EXPLAIN SELECT * FROM t'],
  ['explain verbose', 'EXPLAIN VERBOSE SELECT * FROM t'],
  ['explain options', 'EXPLAIN (FORMAT JSON, COSTS off) SELECT * FROM t'],
  ['explain with', 'EXPLAIN (VERBOSE) WITH x AS (SELECT 1) SELECT * FROM x'],
  ['values', 'VALUES (1, 2), (3, 4)'],
  ['table', 'TABLE users'],
  ['pg_sleep', 'SELECT pg_sleep(0.1)'],
  ['ordinary functions', 'SELECT count(*), coalesce(a, 0), now(), date_trunc($1, t) FROM x'],
  ['txid_current_snapshot is not txid_current', 'SELECT txid_current_snapshot()'],
  ['column named like a trap, not called', 'SELECT nextval_count, lastval FROM stats'],
  ['trap name not followed by paren', 'SELECT nextval FROM counters'],
  ['substring ... for n', 'SELECT substring(name from 1 for 3) FROM t'],
  ['updated_at is not update', 'SELECT updated_at, deleted, inserted_by FROM t'],
  ['for in a string', "SELECT * FROM t WHERE note = 'for update'"],
  ['keywords in a string', "SELECT 'insert into x; delete from y' AS s"],
  ['doubled quote in string', "SELECT 'it''s; DELETE FROM t' AS s"],
  ['escape string with backslash quote', "SELECT E'it\\'s; DELETE FROM t' AS s"],
  ['lower-case escape string', "SELECT e'a\\\\'"],
  ['escape string with doubled quote', "SELECT E'x''; update t' AS s"],
  ['dollar quote', 'SELECT $$ for update; insert $$ AS s'],
  ['tagged dollar quote', 'SELECT $fn$ $$ nextval( $$ $fn$ AS s'],
  ['dollar quote with a different inner tag', "SELECT $a$ $b$ ; DELETE $b$ ' $a$"],
  ['quoted identifier', 'SELECT "for update", "into", "delete" FROM t'],
  ['quoted identifier with doubled quote', 'SELECT "a"";delete" FROM t'],
  ['quoted non-trap call', 'SELECT "myFunc"(1)'],
  ['keywords in line comment', 'SELECT 1 -- ; DELETE FROM t\n'],
  ['keywords in block comment', 'SELECT 1 /* FOR UPDATE */'],
  ['keywords in nested comment', 'SELECT 1 /* /* */ FOR UPDATE */'],
  ['line comment ended by CR', 'SELECT 1 -- x\r+ 1'],
  ['trailing semicolon', 'SELECT 1;'],
  ['trailing semicolon, comment and whitespace', 'SELECT 1; -- done\n /* end */  '],
  ['empty statements after', 'SELECT 1;;  ;'],
  ['positional parameter', 'SELECT $1::int, $22'],
  ['numbers', 'SELECT 1.5, .5, 1_000, 1e5'],
  ['identifier containing $', 'SELECT a$b FROM t'],
  ['bit and hex strings', "SELECT B'101', X'1F', N'x'"],
  ['unicode string', "SELECT U&'d\\0061t\\+000061'"],
  ['non-ascii identifiers', 'SELECT größe FROM maße'],
  ['advisory word not called', 'SELECT * FROM pg_locks WHERE locktype = $1'],
  // Near neighbours of side-effecting functions that a standby runs (checked on PostgreSQL 18).
  ['txid_current_if_assigned', 'SELECT txid_current_if_assigned()'],
  ['pg_current_snapshot', 'SELECT pg_current_snapshot()'],
  ['bt_index_check is not the parent check', "SELECT bt_index_check('i')"],
  ['verify_heapam', "SELECT * FROM verify_heapam('t')"],
  ['pageinspect brin read', "SELECT * FROM brin_page_items(get_raw_page('i', 2), 'i')"],
  ['pg_last_wal_replay_lsn', 'SELECT pg_last_wal_replay_lsn()'],
  ['pg_wal_lsn_diff', "SELECT pg_wal_lsn_diff('0/2', '0/1')"],
  ['brin name as a column', 'SELECT brin_summarize_range FROM t'],
  ['longer name than a listed one', "SELECT gin_clean_pending_list_size('i')"],
];

const writes: ReadonlyArray<readonly [string, string]> = [
  // Row locks.
  ['for update', 'SELECT * FROM t FOR UPDATE'],
  ['for no key update', 'SELECT * FROM t FOR NO KEY UPDATE'],
  ['for share', 'SELECT * FROM t FOR SHARE'],
  ['for key share', 'select * from t for key share'],
  ['for update skip locked', 'SELECT * FROM jobs LIMIT 1 FOR UPDATE SKIP LOCKED'],
  ['for update with comment between', 'SELECT * FROM t FOR /* x */ UPDATE'],
  ['for share in subquery', 'SELECT * FROM (SELECT * FROM t FOR SHARE) s'],
  ['for update in a cte', 'WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x'],
  // Sequences and session-bound values.
  ['nextval', "SELECT nextval('s')"],
  ['nextval with space', "SELECT nextval ('s')"],
  ['nextval with comment', "SELECT nextval/* c */('s')"],
  ['nextval upper case', "SELECT NEXTVAL('s')"],
  ['schema-qualified nextval', "SELECT pg_catalog.nextval('s')"],
  ['public.nextval', "SELECT public.nextval('s')"],
  ['quoted nextval', `SELECT "nextval"('s')`],
  ['nextval in values', "VALUES (nextval('s'))"],
  ['nextval in from', "SELECT * FROM nextval('s')"],
  ['setval', "SELECT setval('s', 10)"],
  ['currval', "SELECT currval('s')"],
  ['lastval', 'SELECT lastval()'],
  ['select into', 'SELECT * INTO newtable FROM t'],
  ['select into after a number', 'SELECT 1into t'],
  // Locks, transaction ids, session state, notifications, other servers.
  ['pg_advisory_lock', 'SELECT pg_advisory_lock(1)'],
  ['pg_try_advisory_xact_lock', 'SELECT pg_try_advisory_xact_lock(1, 2)'],
  ['pg_advisory_unlock_all', 'SELECT pg_advisory_unlock_all()'],
  ['pg_advisory_lock_shared', 'SELECT PG_ADVISORY_LOCK_SHARED(1)'],
  ['txid_current', 'SELECT txid_current()'],
  ['pg_current_xact_id', 'SELECT pg_current_xact_id()'],
  ['set_config', "SELECT set_config('search_path', 'x', false)"],
  ['pg_notify', "SELECT pg_notify('ch', 'hi')"],
  ['dblink', "SELECT * FROM dblink('host=x', 'select 1') AS t(a int)"],
  ['dblink_exec', "SELECT dblink_exec('delete from t')"],
  ['lo_create', 'SELECT lo_create(0)'],
  ['lo_import', "SELECT lo_import('/tmp/x')"],
  ['lo_unlink', 'SELECT lo_unlink(42)'],
  ['lowrite', "SELECT lowrite(0, 'x')"],
  ['pg_terminate_backend', 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity'],
  ['pg_current_wal_lsn', 'SELECT pg_current_wal_lsn()'],
  ['pg_stat_reset', 'SELECT pg_stat_reset()'],
  ['replication slot', "SELECT pg_create_physical_replication_slot('s')"],
  ['u& quoted name with escapes', `SELECT U&"\\006Eextval"('s')`],
  ['uescape', `SELECT U&"!006Eextval" UESCAPE '!' ('s')`],
  // Data-modifying CTEs.
  ['with insert', 'WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x'],
  ['with update', 'WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x'],
  ['with delete', 'with x as (delete from t returning *) select * from x'],
  ['with merge', 'WITH x AS (MERGE INTO t USING s ON true DO NOTHING) SELECT 1'],
  ['with ... insert main statement', 'WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x'],
  // EXPLAIN that executes, or explains something that is not a read.
  ['explain analyze', 'EXPLAIN ANALYZE SELECT 1'],
  ['explain analyse', 'EXPLAIN ANALYSE SELECT 1'],
  ['explain (analyze)', 'EXPLAIN (ANALYZE) SELECT 1'],
  ['explain options with analyze', 'EXPLAIN (FORMAT JSON, ANALYZE true) SELECT 1'],
  ['explain analyze false (conservative)', 'EXPLAIN (ANALYZE false) SELECT 1'],
  ['explain quoted analyze option', 'EXPLAIN ("analyze") SELECT 1'],
  ['explain analyze verbose', 'EXPLAIN ANALYZE VERBOSE SELECT 1'],
  ['explain execute', 'EXPLAIN EXECUTE stmt(1)'],
  ['explain insert', 'EXPLAIN INSERT INTO t VALUES (1)'],
  ['explain create table as', 'EXPLAIN CREATE TABLE x AS SELECT 1'],
  ['explain alone', 'EXPLAIN'],
  // Multiple statements.
  ['select then delete', 'SELECT 1; DELETE FROM t'],
  ['select then select', 'SELECT 1; SELECT 2'],
  ['select, comment, then statement', 'SELECT 1; /* x */ -- y\n UPDATE t SET a = 1'],
  ['semicolon then anything', 'SELECT 1;x'],
  // Statements that are not reads.
  ['insert', 'INSERT INTO t VALUES (1)'],
  ['update', 'UPDATE t SET a = 1'],
  ['delete', 'DELETE FROM t'],
  ['merge', 'MERGE INTO t USING s ON true DO NOTHING'],
  ['begin', 'BEGIN'],
  ['start transaction', 'START TRANSACTION READ ONLY'],
  ['set', "SET search_path = 'x'"],
  ['listen', 'LISTEN ch'],
  ['notify', 'NOTIFY ch'],
  ['copy', 'COPY (SELECT 1) TO STDOUT'],
  ['call', 'CALL p()'],
  ['do', 'DO $$ BEGIN PERFORM 1; END $$'],
  ['lock', 'LOCK TABLE t'],
  ['create', 'CREATE TABLE t (a int)'],
  ['declare cursor', 'DECLARE c CURSOR FOR SELECT 1'],
  ['execute', 'EXECUTE stmt'],
  ['vacuum', 'VACUUM t'],
  ['parenthesised non-read', '(INSERT INTO t VALUES (1))'],
  // Nothing to classify, or text we cannot be sure of.
  ['empty', ''],
  ['only whitespace', '   \n'],
  ['only comment', '-- nothing'],
  ['quoted leading word', '"select" 1'],
  ['unterminated string', "SELECT 'abc"],
  ['unterminated escape string', "SELECT E'abc\\'"],
  ['unterminated quoted identifier', 'SELECT "abc'],
  ['unterminated dollar quote', 'SELECT $$abc'],
  ['unterminated tagged dollar quote', 'SELECT $x$abc$y$'],
  ['unterminated block comment', 'SELECT 1 /* /* */'],
  ['stray dollar', 'SELECT $x'],
  [
    'backslash before a closing quote (standard_conforming_strings=off would differ)',
    "SELECT 'a\\' , '; DELETE FROM t; --'",
  ],
  ['column named update (conservative)', 'SELECT update FROM t'],
];

/**
 * Functions a standby refuses (SQLSTATE 55000 "recovery is in progress" or a lock it cannot
 * take, 25006, XX000) or that act on the wrong server there; each must route to the primary
 * however it is spelled.
 */
const sideEffectCalls: readonly string[] = [
  "brin_summarize_new_values('i')",
  "brin_summarize_range('i', 0)",
  "brin_desummarize_range('i', 0)",
  "gin_clean_pending_list('i')",
  'pg_log_standby_snapshot()',
  "pg_restore_relation_stats('schemaname', 'public', 'relname', 't', 'relpages', 1)",
  "pg_clear_relation_stats('public', 't')",
  "pg_restore_attribute_stats('schemaname', 'public', 'relname', 't', 'attname', 'a')",
  "pg_clear_attribute_stats('public', 't', 'a', false)",
  'pg_switch_wal()',
  'pg_switch_xlog()',
  "pg_create_restore_point('x')",
  'pg_current_wal_insert_lsn()',
  'pg_current_xlog_location()',
  "pg_walfile_name('0/0')",
  'txid_current()',
  'pg_current_xact_id()',
  "nextval('s')",
  "setval('s', 1)",
  "pg_create_logical_replication_slot('s', 'pgoutput')",
  "pg_drop_replication_slot('s')",
  "pg_replication_slot_advance('s', '0/0')",
  'pg_sync_replication_slots()',
  "pg_logical_emit_message(true, 'p', 'x')",
  "pg_replication_origin_create('o')",
  'pg_export_snapshot()',
  "pg_import_system_collations('pg_catalog')",
  "pg_truncate_visibility_map('t')",
  "bt_index_parent_check('i')",
  "heap_force_kill('t', ARRAY['(0,1)']::tid[])",
  "heap_force_freeze('t', ARRAY['(0,1)']::tid[])",
  'pg_stat_statements_reset()',
  'pg_wal_replay_pause()',
];

/** Every spelling PostgreSQL resolves to the same call, plus positions a call can take. */
function spellings(call: string): Array<readonly [string, string]> {
  const paren = call.indexOf('(');
  const name = call.slice(0, paren);
  const args = call.slice(paren);
  return [
    ['as written', `SELECT ${call}`],
    ['upper case', `SELECT ${name.toUpperCase()}${args}`],
    ['schema-qualified', `SELECT pg_catalog.${call}`],
    ['quoted', `SELECT "${name}"${args}`],
    ['schema-qualified, both quoted', `SELECT "pg_catalog"."${name}"${args}`],
    ['space and comment before (', `SELECT ${name} /* c */ ${args}`],
    ['in FROM', `SELECT * FROM ${call} AS f`],
    ['in a CTE', `WITH x AS (SELECT ${call}) SELECT * FROM x`],
  ];
}

describe('classifySql: functions that cannot run on a standby', () => {
  const cases = sideEffectCalls.flatMap((call) =>
    spellings(call).map(([how, sql]) => [call.slice(0, call.indexOf('(')), how, sql] as const),
  );

  it.each(cases)('write: %s, %s', (_name, _how, sql) => {
    expect(classifySql(sql)).toBe('write');
  });
});

describe('classifySql', () => {
  it.each(reads)('read: %s', (_name, sql) => {
    expect(classifySql(sql)).toBe('read');
  });

  it.each(writes)('write: %s', (_name, sql) => {
    expect(classifySql(sql)).toBe('write');
  });

  it('answers the same from the cache as from a scan', () => {
    for (const [, sql] of [...reads, ...writes]) {
      const first = classifySql(sql);
      expect(classifySql(sql)).toBe(first);
    }
  });
});

describe('SqlClassifier', () => {
  it('answers as classifySql does, from a scan and from its memo', () => {
    const classifier = new SqlClassifier();
    for (const [, sql] of [...reads, ...writes]) {
      expect(classifier.classify(sql)).toBe(classifySql(sql));
      expect(classifier.classify(sql)).toBe(classifySql(sql));
    }
  });

  it('does not grow past its bound and keeps answering correctly', () => {
    const classifier = new SqlClassifier();
    for (let i = 0; i < CLASSIFY_SQL_CACHE_SIZE * 2 + 17; i++) {
      expect(classifier.classify(`SELECT * FROM t WHERE id = ${i}`)).toBe('read');
      expect(classifier.size).toBeLessThanOrEqual(CLASSIFY_SQL_CACHE_SIZE);
    }
    expect(classifier.size).toBe(CLASSIFY_SQL_CACHE_SIZE);
    expect(classifier.classify('SELECT 1 FOR UPDATE')).toBe('write');
    expect(classifier.size).toBe(CLASSIFY_SQL_CACHE_SIZE);
  });

  it('evicts the oldest entry first', () => {
    const classifier = new SqlClassifier();
    for (let i = 0; i < CLASSIFY_SQL_CACHE_SIZE; i++) classifier.classify(`SELECT ${i}`);
    classifier.classify('SELECT 1 FOR UPDATE');
    // The first text was evicted, so classifying it again adds it back and evicts the next one;
    // the size stays at the bound either way.
    classifier.classify('SELECT 0');
    expect(classifier.size).toBe(CLASSIFY_SQL_CACHE_SIZE);
  });

  it('does not cache texts decided by their first word', () => {
    const classifier = new SqlClassifier();
    for (let i = 0; i < 100; i++) classifier.classify(`INSERT INTO t VALUES (${i})`);
    expect(classifier.size).toBe(0);
  });

  it('does not cache texts longer than the text bound', () => {
    const classifier = new SqlClassifier();
    const long = `SELECT ${'1 + '.repeat(CLASSIFY_SQL_CACHE_MAX_TEXT_LENGTH)}1`;
    expect(classifier.classify(long)).toBe('read');
    expect(classifier.size).toBe(0);
  });

  it('keeps its memo to itself: one pool filling its memo leaves another untouched', () => {
    const busy = new SqlClassifier();
    const quiet = new SqlClassifier();
    quiet.classify('SELECT 1');
    for (let i = 0; i < CLASSIFY_SQL_CACHE_SIZE + 10; i++) busy.classify(`SELECT ${i + 2}`);
    expect(quiet.size).toBe(1);
    busy.clear();
    expect(busy.size).toBe(0);
    expect(quiet.size).toBe(1);
  });

  it('classifySql keeps no memo: the same text scans the same after any other', () => {
    // Interleaving cannot leak one scan's position into the next.
    expect(classifySql("SELECT 'unterminated")).toBe('write');
    expect(classifySql('SELECT 1')).toBe('read');
    expect(classifySql('SELECT 1 FOR UPDATE')).toBe('write');
    expect(classifySql('SELECT 1')).toBe('read');
  });
});

describe('classifySql on adversarial input', () => {
  // No regex means no backtracking; these guard against accidental quadratic loops.
  it.each([
    ['many nested comment openers', `SELECT 1 ${'/*'.repeat(50_000)}`, 'write'],
    ['many doubled quotes', `SELECT '${"''".repeat(50_000)}'`, 'read'],
    ['many dollar signs, odd count', `SELECT ${'$'.repeat(100_001)}`, 'write'],
    ['many open parentheses', `${'('.repeat(100_000)}SELECT 1`, 'read'],
    ['many words', `SELECT ${'a '.repeat(100_000)}`, 'read'],
  ] as const)('%s', (_name, sql, expected) => {
    expect(classifySql(sql)).toBe(expected);
  });
});
