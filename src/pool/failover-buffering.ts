/**
 * When a call bound for the primary waits in the failover buffer (failover-buffer.ts), and when
 * buffered calls go: the policy between the call path and the buffer's state machine.
 *
 * A call waits only when nothing of it can have been applied (nothing sent, or refused read-only
 * by a server in recovery, which writes nothing) and the primary is being replaced: the
 * candidates are being asked which is writable, the primary is declared down, or its circuit does
 * not admit calls. Buffered calls go, oldest first, when the primary may take them again: its
 * circuit closed, it came up, or a discovery ended. While its circuit is half-open only the
 * oldest goes, as the circuit's probe. They go a window at a time (the primary's permits, as the
 * adaptive limit sets them, plus as many places in its queue), each one that settles letting the
 * next out, so a full buffer never floods the endpoint's queue into QueueFullError or
 * AcquireTimeoutError.
 */
import { classify } from '../classify.js';
import type { Endpoint } from '../endpoint/endpoint.js';
import { PoolClosedError } from '../errors.js';
import type { ResolvedFailoverOptions } from '../options/failover.js';
import { wasNotSent } from '../retry/policy.js';
import type { CandidatePrimary } from '../routing/primary-candidates.js';
import { describeError } from '../telemetry/describe-error.js';
import type { LoggerLike } from '../telemetry/logger.js';
import { type BufferPlace, FailoverBuffer, type FailoverBufferStats } from './failover-buffer.js';

export type { BufferPlace } from './failover-buffer.js';

/**
 * Errors that never make a call wait: the caller's own deadline or abort, the pool closing, our
 * own overload refusal (a full queue is load, not a failover), and the buffer's own errors.
 */
const NEVER_BUFFERED = new Set([
  'E_TIMEOUT',
  'E_ABORTED',
  'E_POOL_CLOSED',
  'E_QUEUE_FULL',
  'E_CONFIG',
  'E_FAILOVER_TIMEOUT',
  'E_FAILOVER_BUFFER_FULL',
]);

export interface FailoverBufferingDeps {
  /** The primary endpoint (with candidates, the one that forwards to the current candidate). */
  primary: Endpoint;
  candidates: CandidatePrimary | undefined;
  options: ResolvedFailoverOptions;
  /** Aborted at end(): every buffered call fails with PoolClosedError then. */
  lifetime: AbortSignal;
  logger: LoggerLike;
}

export class FailoverBuffering {
  private readonly buffer: FailoverBuffer;
  /** Calls let out whose try has not settled (nor come back): each that does lets the next out. */
  private inFlight = 0;
  /** The discovery whose end lets buffered calls out; watched once. */
  private watched: Promise<void> | undefined;
  /** Why the latest call waits: the cause given to calls that queue behind it. */
  private lastCause: unknown;

  constructor(private readonly deps: FailoverBufferingDeps) {
    this.buffer = new FailoverBuffer({
      endpoint: deps.primary.name,
      bufferMs: deps.options.bufferMs,
      maxBuffered: deps.options.maxBuffered,
    });
    deps.lifetime.addEventListener('abort', () => this.buffer.drain(() => new PoolClosedError()), {
      once: true,
    });
  }

  /**
   * Whether a new call bound for the primary must wait before it is even tried: calls are
   * buffered (it queues behind them, so buffered calls keep their turn), or the primary is being
   * looked for.
   */
  get mustWait(): boolean {
    return this.buffer.size > 0 || this.deps.candidates?.isDiscovering === true;
  }

  /**
   * Why a call that queues behind the buffered ones waits: the latest refusal, while calls are
   * buffered; undefined when it waits only for the candidates' answer (at start, say).
   */
  get cause(): unknown {
    return this.buffer.size > 0 ? this.lastCause : undefined;
  }

  /** Whether the primary is being replaced: looked for, declared down, or its circuit refusing. */
  primaryRefuses(): boolean {
    const { primary, candidates } = this.deps;
    return candidates?.isDiscovering === true || primary.isDown || !primary.breaker.admits;
  }

  /**
   * Whether a call bound for the primary that failed or was refused with `err` should wait for a
   * primary instead of failing: nothing of it was applied, and the primary is being replaced.
   */
  shouldHold(err: unknown): boolean {
    if (this.deps.lifetime.aborted) return false;
    const code = (err as { code?: unknown } | null | undefined)?.code;
    if (typeof code === 'string' && NEVER_BUFFERED.has(code)) return false;
    const errorClass = classify(err);
    if (errorClass === 'aborted') return false;
    // A server in recovery applied nothing, even though the statement reached it.
    if (!wasNotSent(err) && errorClass !== 'read-only') return false;
    return this.primaryRefuses();
  }

  /**
   * Holds a call; resolves with its place once it may be tried again (it is then in flight:
   * `returned()` or `settled()` must follow, once). `place` is given when it comes back.
   */
  hold(cause: unknown, signal: AbortSignal | undefined, place?: BufferPlace): Promise<BufferPlace> {
    // Once per outage; not for the wait at start, which has no refusal behind it.
    if (this.buffer.size === 0 && place === undefined && cause !== undefined) {
      this.deps.logger.warn(
        { endpoint: this.deps.primary.name, err: describeError(cause) },
        'resilient-pool: writes wait for a primary (failover buffering)',
      );
    }
    if (cause !== undefined) this.lastCause = cause;
    const held = this.buffer.hold(cause, signal, place);
    this.watchDiscovery();
    // The primary may already take calls (a newcomer queued behind a draining buffer).
    this.pump();
    return held;
  }

  /** A call let out came back (the primary still refused it): its try is over. */
  returned(): void {
    this.inFlight--;
  }

  /** A call let out settled: the next may go. */
  settled(): void {
    this.inFlight--;
    this.pump();
  }

  /**
   * Lets buffered calls out if the primary may take them: a window at a time while its circuit is
   * closed, one (the circuit's probe) while it is half-open, none while it is being replaced.
   * Called on every change that may mean the primary is back; cheap when nothing waits.
   */
  pump(): void {
    const { buffer } = this;
    if (buffer.size === 0 || this.deps.lifetime.aborted || this.primaryRefuses()) return;
    const { primary } = this.deps;
    const gate = primary.gate;
    const window =
      primary.breaker.state === 'closed' ? gate.limit + Math.min(gate.limit, gate.maxWaiting) : 1;
    const room = window - this.inFlight;
    if (room > 0) this.inFlight += buffer.release(room);
  }

  stats(): FailoverBufferStats {
    return this.buffer.stats();
  }

  /** Lets buffered calls out when the discovery under way ends, whatever it found. */
  private watchDiscovery(): void {
    const candidates = this.deps.candidates;
    if (candidates === undefined || !candidates.isDiscovering || this.watched !== undefined) return;
    this.watched = candidates.settled().then(() => {
      this.watched = undefined;
      this.pump();
      // Calls that came back to a buffer while that discovery ended wait for the next one.
      if (this.buffer.size > 0) this.watchDiscovery();
    });
  }
}
