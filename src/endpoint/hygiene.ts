/**
 * Connection hygiene: what is checked on a pooled client before it is handed out, and what is
 * done to it when it comes back. Everything here is opt-in (options `validate`,
 * `resetOnRelease`, `leakDetection`) except rolling back a transaction left open, which is always
 * on because a client inside a transaction must never reach the next caller.
 */
import type { ResolvedHygieneOptions } from '../options/resolved.js';
import type { PgClientLike } from '../pg-like.js';
import type { EndpointRole } from '../telemetry/events.js';

const RELEASED_AT = Symbol('resilient-pool.releasedAt');
/** Clients of a primary already checked for being writable (once per connection). */
const VERIFIED_WRITABLE = new WeakSet<object>();

/** The check a client needs before use. */
export type ClientCheck = 'ping' | 'writable';

/** Notes when a client went back to the pool (only when idle checks are on). */
export function stampRelease(client: object): void {
  (client as { [RELEASED_AT]?: number })[RELEASED_AT] = Date.now();
}

/** An error shaped like PostgreSQL's read_only_sql_transaction, for a primary found read-only. */
export function readOnlyPrimaryError(endpoint: string): Error {
  return Object.assign(
    new Error(
      `endpoint "${endpoint}" was configured as the primary but is read-only (in recovery); it may have been demoted`,
    ),
    { code: '25006', endpoint },
  );
}

export function isReadOnlyPrimaryError(err: Error): boolean {
  return (err as { code?: unknown }).code === '25006';
}

export class ConnectionHygiene {
  /** Whether releases must be stamped (idle checks need the time a client was last used). */
  readonly stampReleases: boolean;
  readonly checkTimeout: number;
  readonly resetOnRelease: 'none' | 'discard';
  readonly leakThreshold: number | undefined;
  /** Whether any check can apply; false keeps `checkFor` off the hot path entirely. */
  readonly checks: boolean;

  constructor(private readonly options: ResolvedHygieneOptions) {
    this.checks = options.validate.idleAfter !== undefined || options.validate.primaryWritable;
    this.stampReleases = options.validate.idleAfter !== undefined;
    this.checkTimeout = options.validate.timeout;
    this.resetOnRelease = options.resetOnRelease;
    this.leakThreshold = options.leakDetection.threshold;
  }

  /** The check `client` needs now, or undefined (the common case: nothing). */
  checkFor(client: PgClientLike, role: EndpointRole): ClientCheck | undefined {
    const { idleAfter, primaryWritable } = this.options.validate;
    if (primaryWritable && role === 'primary' && !VERIFIED_WRITABLE.has(client)) return 'writable';
    if (idleAfter === undefined) return undefined;
    const releasedAt = (client as { [RELEASED_AT]?: number })[RELEASED_AT];
    // A client never released is fresh from connect(): nothing to check.
    if (releasedAt === undefined || Date.now() - releasedAt < idleAfter) return undefined;
    return 'ping';
  }
}

/**
 * Runs a check on `client` within `timeoutMs`; `done(null)` when it passed. A check that times
 * out leaves the client unusable (the caller destroys it).
 */
export function runCheck(
  client: PgClientLike,
  check: ClientCheck,
  timeoutMs: number,
  endpoint: string,
  done: (err: Error | null) => void,
): void {
  let finished = false;
  const finish = (err: Error | null) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    done(err);
  };
  // Classified as a connection failure ('ETIMEDOUT'): the connection is presumed dead.
  const timer = setTimeout(
    () =>
      finish(
        Object.assign(new Error(`connection check did not answer within ${timeoutMs} ms`), {
          code: 'ETIMEDOUT',
        }),
      ),
    timeoutMs,
  );
  const sql =
    check === 'writable' ? "SELECT current_setting('transaction_read_only') AS ro" : 'SELECT 1';
  client.query(sql, undefined, (err, result) => {
    if (err) return finish(err);
    if (check === 'writable') {
      if ((result?.rows[0] as { ro?: string } | undefined)?.ro === 'on') {
        return finish(readOnlyPrimaryError(endpoint));
      }
      VERIFIED_WRITABLE.add(client);
    }
    finish(null);
  });
}
