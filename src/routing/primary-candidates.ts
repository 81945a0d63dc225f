/**
 * Primary discovery: several candidate pools behind one PgPoolLike, forwarding to the one that
 * is writable (`pg_is_in_recovery()` is false), like libpq's `target_session_attrs=read-write`
 * or JDBC's `targetServerType=primary`. After a failover the pool re-discovers which candidate
 * was promoted; the ResilientPool holds writes while it does, so each is sent once, to the new
 * primary.
 */
import { adopt, destroySocket, disown, type Lease } from '../endpoint/lease.js';
import { ResilientPoolError } from '../errors.js';
import type { PgClientLike, PgPoolLike } from '../pg-like.js';

export interface Candidate {
  name: string;
  pool: PgPoolLike;
}

type ConnectCallback = (
  err: Error | undefined,
  client: PgClientLike | undefined,
  done: () => void,
) => void;

/**
 * No candidate was writable (all down, or all in recovery), after the whole discovery: no endpoint
 * can take a write (`E_NO_HEALTHY_ENDPOINT`, so `instanceof NoHealthyEndpointError` holds).
 */
export class NoWritableCandidateError extends ResilientPoolError {
  static override readonly code = 'E_NO_HEALTHY_ENDPOINT';
  override readonly name = 'NoWritableCandidateError';
  constructor(readonly answers: ReadonlyArray<{ name: string; answer: string }>) {
    super(
      'E_NO_HEALTHY_ENDPOINT',
      `no candidate primary is writable: ${answers.map((a) => `${a.name}: ${a.answer}`).join('; ')}`,
      true,
    );
  }
}

/** Candidates asked and not answered yet: a frozen one is not asked again until it answers. */
const ASKING = new WeakSet<PgPoolLike>();
const IGNORE_LOSS: Lease = { connectionLost: () => {} };

/**
 * Asks one candidate whether it is writable, within `timeoutMs`. A client that does not answer in
 * time is destroyed (its socket too, since a frozen server never closes it). One whose connect
 * completes after the time is up goes straight back to its pool, healthy: the server answered its
 * handshake, so it is a good connection (after a hang, one the pool need not open again when
 * recovery asks for connections), and discovery never leaks clients or waiters.
 */
async function isWritable(pool: PgPoolLike, timeoutMs: number): Promise<string | true> {
  if (ASKING.has(pool)) return 'the previous check has not answered yet';
  ASKING.add(pool);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  let asked: PgClientLike | undefined;
  const noAnswer = new Error(`no answer within ${timeoutMs} ms`);
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      if (asked !== undefined) {
        destroySocket(asked);
        disown(asked);
        asked.release(noAnswer);
        asked = undefined;
      }
      resolve(noAnswer.message);
    }, timeoutMs);
  });
  const ask = (async (): Promise<string | true> => {
    const client = await pool.connect();
    if (timedOut) {
      client.release();
      throw noAnswer;
    }
    adopt(client, IGNORE_LOSS);
    asked = client;
    try {
      const result = await client.query('SELECT pg_is_in_recovery() AS in_recovery');
      if (asked === client) {
        asked = undefined;
        disown(client);
        client.release();
      }
      return (result.rows[0] as { in_recovery?: boolean } | undefined)?.in_recovery === false
        ? true
        : 'in recovery (a standby)';
    } catch (err) {
      if (asked === client) {
        asked = undefined;
        disown(client);
        client.release(err as Error);
      }
      throw err;
    }
  })()
    .catch((err: unknown) => (err instanceof Error ? err.message : String(err)))
    .finally(() => ASKING.delete(pool));
  try {
    return await Promise.race([ask, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class CandidatePrimary implements PgPoolLike {
  private current: Candidate;
  private discovering: Promise<Candidate> | undefined;

  constructor(
    readonly candidates: readonly Candidate[],
    private readonly probeTimeoutMs: number,
    private readonly onSwitch: (from: string, to: string) => void,
  ) {
    this.current = candidates[0]!;
  }

  /** The candidate writes go to now. */
  get currentName(): string {
    return this.current.name;
  }

  /** Whether a discovery is under way (writes wait for it). */
  get isDiscovering(): boolean {
    return this.discovering !== undefined;
  }

  /**
   * Finds the writable candidate (the current one first) and switches to it. Concurrent calls
   * share one discovery. Rejects with NoWritableCandidateError when none is writable.
   */
  discover(): Promise<Candidate> {
    this.discovering ??= this.findWritable().finally(() => {
      this.discovering = undefined;
    });
    return this.discovering;
  }

  /** Resolves once no discovery is under way (whatever its outcome). */
  settled(): Promise<void> {
    return (this.discovering ?? Promise.resolve()).then(
      () => {},
      () => {},
    );
  }

  private async findWritable(): Promise<Candidate> {
    const ordered = [this.current, ...this.candidates.filter((c) => c !== this.current)];
    const answers = await Promise.all(
      ordered.map(async (c) => ({ c, answer: await isWritable(c.pool, this.probeTimeoutMs) })),
    );
    const writable = answers.find((a) => a.answer === true);
    if (writable === undefined) {
      throw new NoWritableCandidateError(
        answers.map((a) => ({ name: a.c.name, answer: String(a.answer) })),
      );
    }
    if (writable.c !== this.current) {
      const from = this.current.name;
      this.current = writable.c;
      this.onSwitch(from, writable.c.name);
    }
    return writable.c;
  }

  // ---- PgPoolLike: forwarded to the current candidate --------------------------------------

  connect(): Promise<PgClientLike>;
  connect(callback: ConnectCallback): void;
  connect(callback?: ConnectCallback): Promise<PgClientLike> | undefined {
    const pool = this.current.pool;
    if (callback === undefined) return pool.connect();
    pool.connect(callback);
    return undefined;
  }

  async end(): Promise<void> {
    await Promise.all(this.candidates.map((c) => c.pool.end()));
  }

  on(event: 'error', listener: (err: Error, client?: unknown) => void): this {
    for (const c of this.candidates) c.pool.on(event, listener);
    return this;
  }

  off(event: 'error', listener: (err: Error, client?: unknown) => void): this {
    for (const c of this.candidates) c.pool.off?.(event, listener);
    return this;
  }

  get totalCount(): number {
    return this.candidates.reduce((n, c) => n + c.pool.totalCount, 0);
  }

  /** The current candidate's idle clients; 0 while discovering, so callers arm their timers. */
  get idleCount(): number {
    return this.discovering ? 0 : this.current.pool.idleCount;
  }

  get waitingCount(): number {
    return this.candidates.reduce((n, c) => n + c.pool.waitingCount, 0);
  }

  get options(): PgPoolLike['options'] {
    return this.current.pool.options;
  }

  /** pg.Pool's client class, so probes can open connections of their own. */
  get Client(): unknown {
    return (this.current.pool as { Client?: unknown }).Client;
  }
}
