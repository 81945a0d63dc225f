/**
 * The drill's traffic, shaped like a service's: readers and writers are independent callers, so
 * a hung primary stalls the writers and never the reads of callers that happened to be waiting
 * on a write. Each caller is paced to its share of the target rate, so that throughput is a clear
 * signal (it drops when a fault bites) and the machine's cores stay with the servers. Bounded:
 * it stops when told to, and each call is bounded by the pool's own timeouts.
 *
 * Some writes also check read-your-writes: they capture the write's consistency token and read
 * the row back `after` it, which must find it whatever replica serves the read (a lagging one
 * must not).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { classify, consistencyToken, type ResilientPool } from '../index.js';
import type { CallKind } from './calls.js';

export const LEDGER_TABLE = 'resilient_pool_drill_ledger';
export const KV_TABLE = 'resilient_pool_drill_kv';
const KV_ROWS = 1_000;
/** Share of writes that read their own row back after the write's token. */
const READ_YOUR_WRITES_SHARE = 0.25;

/** How the workload reports its calls (the Recorder). */
export interface CallSink {
  /** A call of `kind` starts; returns its start time. */
  begin(kind: CallKind): number;
  /** The call that began at `start` ended; `error` is its code or class when it failed. */
  finish(kind: CallKind, start: number, outcome?: { error?: string; refused?: boolean }): void;
}

export interface WorkloadOptions {
  /** Callers that only read. */
  readers: number;
  /** Callers that only write. */
  writers: number;
  /** Calls per second across all callers. */
  rate: number;
  /** Share of the rate that is reads, 0..1. */
  readShare: number;
  /** Share of reads that go through the pool's cache, 0..1 (0 without a cache). */
  cachedShare: number;
  rng: () => number;
  sink: CallSink;
}

/** What the workload knows about its writes, for the exactly-once check. */
export interface Ledger {
  /** Writes the pool acknowledged: each must be in the table exactly once. */
  acknowledged: Set<string>;
  /** Writes that failed: they may or may not have been applied (at most once). */
  uncertain: Set<string>;
  /** Failed errors that `classify()` calls 'permanent' (a bug in the library or the drill). */
  unexpected: Array<{ kind: string; message: string }>;
  /** Reads after a write's token that did not see the write. */
  readYourWritesMisses: string[];
  /** Reads after a write's token that did see it. */
  readYourWritesChecked: number;
}

/** Creates the drill's tables on the primary (through the pool under test). */
export async function prepareSchema(db: ResilientPool): Promise<void> {
  await db.write(`DROP TABLE IF EXISTS ${LEDGER_TABLE}, ${KV_TABLE}`);
  // No unique constraint on op_id: a write applied twice must show up as two rows. The index is
  // for the read-your-writes reads.
  await db.write(
    `CREATE TABLE ${LEDGER_TABLE} (op_id text NOT NULL, worker int NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
  );
  await db.write(`CREATE INDEX ON ${LEDGER_TABLE} (op_id)`);
  await db.write(`CREATE TABLE ${KV_TABLE} (id int PRIMARY KEY, v int NOT NULL)`);
  await db.write(`INSERT INTO ${KV_TABLE} SELECT g, g FROM generate_series(1, ${KV_ROWS}) g`);
}

/** The code of an error, else its `classify()` class; and whether it was refused unsent. */
export function describeFailure(err: unknown): { error: string; refused: boolean } {
  const errorClass = classify(err);
  const code = (err as { code?: unknown } | null)?.code;
  return {
    error: typeof code === 'string' ? code : errorClass,
    refused: errorClass === 'unavailable',
  };
}

export class Workload {
  readonly ledger: Ledger = {
    acknowledged: new Set(),
    uncertain: new Set(),
    unexpected: [],
    readYourWritesMisses: [],
    readYourWritesChecked: 0,
  };
  private stopping = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: ResilientPool,
    private readonly options: WorkloadOptions,
  ) {}

  start(): void {
    const { readers, writers, rate, readShare } = this.options;
    const readInterval = (1000 * readers) / Math.max(1e-9, rate * readShare);
    const writeInterval = (1000 * writers) / Math.max(1e-9, rate * (1 - readShare));
    const callers = [
      ...Array.from({ length: readers }, () => this.pace(readInterval, () => this.read())),
      ...Array.from({ length: writers }, (_, i) => {
        let seq = 0;
        return this.pace(writeInterval, () => this.write(i, seq++));
      }),
    ];
    this.running = Promise.all(callers).then(() => {});
  }

  /** Stops issuing calls and waits for the ones in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  /** Runs `call` every `intervalMs` until stopped; a caller stalled by a fault skips its backlog. */
  private async pace(intervalMs: number, call: () => Promise<void>): Promise<void> {
    // Stagger the callers so their calls spread over the interval.
    let next = performance.now() + this.options.rng() * intervalMs;
    while (!this.stopping) {
      const wait = next - performance.now();
      if (wait > 0) await delay(wait);
      if (this.stopping) break;
      next += intervalMs;
      if (next < performance.now() - intervalMs) next = performance.now();
      await call();
    }
  }

  private async read(): Promise<void> {
    const { rng, cachedShare, sink } = this.options;
    // The key-value rows never change, so caching them is always correct.
    const cache = rng() < cachedShare;
    const id = 1 + Math.floor(rng() * KV_ROWS);
    const start = sink.begin('read');
    try {
      await this.db.read(
        `SELECT v FROM ${KV_TABLE} WHERE id = $1`,
        [id],
        cache ? { cache: true } : undefined,
      );
      sink.finish('read', start);
    } catch (err) {
      this.failed('read', start, err);
    }
  }

  private async write(worker: number, seq: number): Promise<void> {
    const { rng, sink } = this.options;
    const opId = `${worker}-${seq}`;
    const checkRead = rng() < READ_YOUR_WRITES_SHARE;
    const start = sink.begin('write');
    let token: ReturnType<typeof consistencyToken>;
    try {
      const result = await this.db.write(
        `INSERT INTO ${LEDGER_TABLE} (op_id, worker) VALUES ($1, $2)`,
        [opId, worker],
        checkRead ? { captureToken: true } : undefined,
      );
      this.ledger.acknowledged.add(opId);
      sink.finish('write', start);
      token = checkRead ? consistencyToken(result) : undefined;
    } catch (err) {
      this.ledger.uncertain.add(opId);
      this.failed('write', start, err);
      return;
    }
    // A write acknowledged without its token (reading the position failed) has nothing to check.
    if (token === undefined || this.stopping) return;
    const readStart = sink.begin('read');
    try {
      const { rows } = await this.db.read<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${LEDGER_TABLE} WHERE op_id = $1`,
        [opId],
        { after: token },
      );
      sink.finish('read', readStart);
      if ((rows[0]?.n ?? 0) >= 1) this.ledger.readYourWritesChecked++;
      else this.ledger.readYourWritesMisses.push(opId);
    } catch (err) {
      this.failed('read', readStart, err);
    }
  }

  private failed(kind: 'read' | 'write', start: number, err: unknown): void {
    if (classify(err) === 'permanent') {
      this.ledger.unexpected.push({
        kind,
        message: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      });
    }
    this.options.sink.finish(kind, start, describeFailure(err));
  }
}
