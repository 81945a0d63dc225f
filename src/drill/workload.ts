/**
 * The drill's traffic: a mix of reads and ledger writes through the ResilientPool, paced to a
 * target rate so that throughput is a clear signal (it drops when a fault bites) and the
 * machine's cores stay with the servers. Bounded: it stops when told to, and each call is bounded
 * by the pool's own timeouts.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { classify, type ResilientPool } from '../index.js';

export const LEDGER_TABLE = 'resilient_pool_drill_ledger';
export const KV_TABLE = 'resilient_pool_drill_kv';
const KV_ROWS = 1_000;

export interface CallOutcome {
  kind: 'read' | 'write';
  ok: boolean;
  latencyMs: number;
  /** `classify()` of the error, or the error's code, when the call failed. */
  error?: string;
}

export interface WorkloadOptions {
  concurrency: number;
  /** Calls per second across all workers. */
  rate: number;
  /** Share of calls that are reads, 0..1. */
  readShare: number;
  /** Share of reads that go through the pool's cache, 0..1 (0 without a cache). */
  cachedShare: number;
  rng: () => number;
  onOutcome: (outcome: CallOutcome) => void;
}

/** What the workload knows about its writes, for the exactly-once check. */
export interface Ledger {
  /** Writes the pool acknowledged: each must be in the table exactly once. */
  acknowledged: Set<string>;
  /** Writes that failed: they may or may not have been applied (at most once). */
  uncertain: Set<string>;
  /** Failed errors that `classify()` calls 'permanent' (a bug in the library or the drill). */
  unexpected: Array<{ kind: string; message: string }>;
}

/** Creates the drill's tables on the primary (through the pool under test). */
export async function prepareSchema(db: ResilientPool): Promise<void> {
  await db.write(`DROP TABLE IF EXISTS ${LEDGER_TABLE}, ${KV_TABLE}`);
  // No unique constraint on op_id: a write applied twice must show up as two rows.
  await db.write(
    `CREATE TABLE ${LEDGER_TABLE} (op_id text NOT NULL, worker int NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
  );
  await db.write(`CREATE TABLE ${KV_TABLE} (id int PRIMARY KEY, v int NOT NULL)`);
  await db.write(`INSERT INTO ${KV_TABLE} SELECT g, g FROM generate_series(1, ${KV_ROWS}) g`);
}

export class Workload {
  readonly ledger: Ledger = { acknowledged: new Set(), uncertain: new Set(), unexpected: [] };
  private stopping = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: ResilientPool,
    private readonly options: WorkloadOptions,
  ) {}

  start(): void {
    const workers = Array.from({ length: this.options.concurrency }, (_, i) => this.worker(i));
    this.running = Promise.all(workers).then(() => {});
  }

  /** Stops issuing calls and waits for the ones in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  private async worker(id: number): Promise<void> {
    const { concurrency, rate, readShare, cachedShare, rng, onOutcome } = this.options;
    const intervalMs = (1000 * concurrency) / rate;
    let seq = 0;
    // Stagger the workers so their calls spread over the interval.
    let next = performance.now() + rng() * intervalMs;
    while (!this.stopping) {
      const wait = next - performance.now();
      if (wait > 0) await delay(wait);
      if (this.stopping) break;
      next += intervalMs;
      // After a long stall (a hang), do not fire the backlog at once.
      if (next < performance.now() - intervalMs) next = performance.now();
      const isRead = rng() < readShare;
      const started = performance.now();
      try {
        if (isRead) {
          // The key-value rows never change, so caching them is always correct.
          const cache = rng() < cachedShare;
          await this.db.read(
            `SELECT v FROM ${KV_TABLE} WHERE id = $1`,
            [1 + Math.floor(rng() * KV_ROWS)],
            cache ? { cache: true } : undefined,
          );
        } else {
          const opId = `${id}-${seq++}`;
          try {
            await this.db.write(`INSERT INTO ${LEDGER_TABLE} (op_id, worker) VALUES ($1, $2)`, [
              opId,
              id,
            ]);
            this.ledger.acknowledged.add(opId);
          } catch (err) {
            this.ledger.uncertain.add(opId);
            throw err;
          }
        }
        onOutcome({
          kind: isRead ? 'read' : 'write',
          ok: true,
          latencyMs: performance.now() - started,
        });
      } catch (err) {
        const errorClass = classify(err);
        if (errorClass === 'permanent') {
          this.ledger.unexpected.push({
            kind: isRead ? 'read' : 'write',
            message: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
          });
        }
        const code = (err as { code?: unknown }).code;
        onOutcome({
          kind: isRead ? 'read' : 'write',
          ok: false,
          latencyMs: performance.now() - started,
          error: typeof code === 'string' ? code : errorClass,
        });
      }
    }
  }
}
