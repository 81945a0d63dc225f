/**
 * Built-in functions a `SELECT` may call that must not be sent to a hot standby: they write, take
 * locks a standby cannot grant, assign transaction ids, change session or server state, reach
 * other servers, or refuse to run during recovery (SQLSTATE 55000 "recovery is in progress",
 * 25006, or XX000 "cannot assign TransactionIds during recovery"). Matched on the name right
 * before `(`, case-insensitively, whatever schema qualifies it or whether it is quoted: a
 * `public.nextval(` or `"NEXTVAL"(` might be a harmless user function, but sending it to the
 * primary is the safe mistake.
 *
 * The SQLSTATE noted beside an entry is what a PostgreSQL 18 standby answered. Functions that
 * run on a standby but act on "this server" (and so on the wrong one when sent to a replica) are
 * listed too, as the caller of `query()` means the primary.
 */

import { containsWord, prefixIs, wordIs } from './lexer.js';

/** Whole names. */
const NAMES: readonly string[] = [
  // Sequences, and currval/lastval, which read only this session's last nextval() (taken on
  // the primary). 25006 on a standby.
  'nextval',
  'setval',
  'currval',
  'lastval',
  // Assign a transaction id: 25006 "cannot execute pg_current_xact_id() during recovery".
  'txid_current',
  'pg_current_xact_id',
  // Session state that a later statement (sent to the primary) expects to find.
  'set_config',
  'pg_export_snapshot',
  'pg_notify',
  'lowrite',
  'loread',
  // Index maintenance that writes WAL: 55000 "recovery is in progress".
  'brin_summarize_new_values',
  'brin_summarize_range',
  'brin_desummarize_range',
  'gin_clean_pending_list',
  // Extensions that repair or reset relations: pg_surgery (55000 "recovery is in progress"),
  // pg_visibility and amcheck's parent check (55000: locks a standby cannot take).
  'heap_force_kill',
  'heap_force_freeze',
  'pg_truncate_visibility_map',
  'bt_index_parent_check',
  // WAL control: 55000 "recovery is in progress".
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_log_standby_snapshot',
  'pg_walfile_name',
  'pg_walfile_name_offset',
  // The same before PostgreSQL 10 (not checked on a standby).
  'pg_switch_xlog',
  'pg_xlogfile_name',
  'pg_xlogfile_name_offset',
  // Server administration: acts on whichever server runs it.
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_log_backend_memory_contexts',
  'pg_stat_statements_reset',
  // 55000: a catalog lock a standby cannot take.
  'pg_import_system_collations',
];

/** Name prefixes: families of functions that all qualify. */
const PREFIXES: readonly string[] = [
  // Large objects: lo_create, lo_import, lo_unlink, lo_put, lo_truncate, ... all write or need
  // a transaction; lo_get alone would be safe but is not worth an exception.
  'lo_',
  'dblink',
  'pg_stat_reset',
  // 25006 "cannot manipulate replication origins during recovery".
  'pg_replication_origin',
  // pg_current_wal_lsn() and friends: 55000 "recovery is in progress".
  'pg_current_wal',
  'pg_current_xlog',
  'pg_wal_replay_',
  'pg_xlog_replay_',
  // Logical decoding and pg_logical_emit_message (XX000 on a standby).
  'pg_logical_',
  'pg_file_',
  // Planner statistics import (PostgreSQL 18: pg_restore_relation_stats,
  // pg_restore_attribute_stats, pg_clear_relation_stats, pg_clear_attribute_stats, and any
  // later pg_restore_*_stats): 55000 "recovery is in progress".
  'pg_restore_',
  'pg_clear_',
];

/**
 * Substrings of `pg_*` names: pg_advisory_lock, pg_try_advisory_xact_lock_shared, ...;
 * pg_create_logical_replication_slot, pg_drop_replication_slot, pg_replication_slot_advance,
 * pg_sync_replication_slots, ...
 */
const PG_INFIXES: readonly string[] = ['advisory', 'replication_slot'];

/** Bit `k` set when some name or prefix starts with letter `a + k`: a cheap first filter. */
const INITIALS: number = [...NAMES, ...PREFIXES, 'pg_'].reduce(
  (bits, name) => bits | (1 << (name.charCodeAt(0) - 97)),
  0,
);

/**
 * Is `s[start, end)` (the name right before a `(`) one of the functions above? Most calls
 * (count, coalesce, now, ...) are rejected on their first letter or their length.
 */
export function isSideEffectFunction(s: string, start: number, end: number): boolean {
  const initial = (s.charCodeAt(start) | 0x20) - 97;
  if (initial < 0 || initial > 25 || (INITIALS & (1 << initial)) === 0) return false;
  for (const name of NAMES) if (wordIs(s, start, end, name)) return true;
  for (const prefix of PREFIXES) {
    if (end - start >= prefix.length && prefixIs(s, start, prefix)) return true;
  }
  if (end - start > 3 && prefixIs(s, start, 'pg_')) {
    for (const infix of PG_INFIXES) if (containsWord(s, start + 3, end, infix)) return true;
  }
  return false;
}
