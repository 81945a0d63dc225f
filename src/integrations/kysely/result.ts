/** node-postgres results in the shape Kysely's own PostgresDriver returns them. */
import type { QueryResult } from 'kysely';
import type { QueryResultLike } from '../../pg-like.js';

const COUNTS_ROWS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/**
 * As Kysely's PostgresConnection: COMMIT and ROLLBACK answer `[{ command }]` (so a COMMIT that
 * rolled back can be told apart), and INSERT, UPDATE, DELETE and MERGE carry `numAffectedRows`.
 */
export function toKyselyResult<R>(result: QueryResultLike): QueryResult<R> {
  const { command, rowCount, rows } = result;
  if (command === 'ROLLBACK' || command === 'COMMIT') {
    return { rows: [{ command } as R] };
  }
  return {
    numAffectedRows:
      command !== undefined && COUNTS_ROWS.has(command) ? BigInt(rowCount ?? 0) : undefined,
    rows: (rows ?? []) as R[],
  };
}

/** pg-cursor's surface, as Kysely's PostgresDialect `cursor` option takes it. */
export interface CursorLike {
  read(rowsCount: number): Promise<unknown[]>;
  close(): Promise<void>;
}

export type CursorConstructor = new (sql: string, parameters: unknown[]) => CursorLike;

/** Kysely's checks on `stream(chunkSize)`, with its messages. */
export function checkStream(
  cursor: CursorConstructor | undefined,
  chunkSize: number | undefined,
): asserts cursor is CursorConstructor {
  if (cursor === undefined) {
    throw new Error(
      "'cursor' is not present in the resilient-pool Kysely config. It's required to make streaming work in postgres.",
    );
  }
  if (!Number.isInteger(chunkSize) || (chunkSize as number) <= 0) {
    throw new Error('chunkSize must be a positive integer');
  }
}

type Submittable = CursorLike & { submit: (...args: never[]) => unknown };

/** Streams `sql` through a cursor on `client`, `chunkSize` rows at a time. */
export async function* streamRows<R>(
  query: (submittable: Submittable) => Submittable,
  cursor: CursorConstructor,
  sql: string,
  parameters: readonly unknown[],
  chunkSize: number,
): AsyncIterableIterator<QueryResult<R>> {
  const open = query(new cursor(sql, [...parameters]) as Submittable);
  try {
    while (true) {
      const rows = await open.read(chunkSize);
      if (rows.length === 0) break;
      yield { rows: rows as R[] };
    }
  } finally {
    await open.close();
  }
}
