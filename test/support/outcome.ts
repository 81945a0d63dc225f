/**
 * How a call settled, as plain data that `toEqual` can compare across two implementations, and
 * a bound on how long a call may take to settle, so a hang fails one test instead of the run.
 */

/** A result as pg returns it, reduced to what callers read. */
export interface ResultShape {
  command: string | null;
  rowCount: number | null;
  rows: unknown[];
}

export type Outcome =
  | { settled: 'resolved'; result: ResultShape | ResultShape[] | string }
  | {
      /** 'threw': synchronously, which breaks a caller's `.catch()`; 'rejected': as it should. */
      settled: 'threw' | 'rejected';
      error: { class: string; code: unknown; message: string };
    };

function shapeOf(value: unknown): ResultShape | ResultShape[] | string {
  // Several statements in one text resolve with one result per statement.
  if (Array.isArray(value)) return value.map((v) => shapeOf(v) as ResultShape);
  if (typeof value !== 'object' || value === null) return `not a result: ${String(value)}`;
  const { command, rowCount, rows } = value as Partial<ResultShape>;
  return { command: command ?? null, rowCount: rowCount ?? null, rows: rows ?? [] };
}

function errorOf(err: unknown): { class: string; code: unknown; message: string } {
  if (!(err instanceof Error)) return { class: typeof err, code: undefined, message: String(err) };
  return {
    class: err.constructor.name,
    code: (err as { code?: unknown }).code,
    message: err.message,
  };
}

export function resolved(value: unknown): Outcome {
  return { settled: 'resolved', result: shapeOf(value) };
}

export function rejected(err: unknown, how: 'threw' | 'rejected' = 'rejected'): Outcome {
  return { settled: how, error: errorOf(err) };
}

/** Thrown by `within` when the call did not settle in time. */
export class DidNotSettleError extends Error {
  override name = 'DidNotSettleError';
}

/**
 * `promise`, or a DidNotSettleError after `ms` naming `what`. The timer is cleared on settle, so
 * a passing call leaves nothing behind.
 */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DidNotSettleError(`${what} did not settle within ${ms} ms (it hangs)`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
