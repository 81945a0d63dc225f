/**
 * Hedged reads: a read that has not answered after a delay is sent to a second endpoint as well;
 * the first answer wins and the other statement is cancelled on its server (an abort, which the
 * endpoint's pipeline turns into a CancelRequest and a destroyed connection). Four parts:
 *
 * - `hedge()` (hedge-race.ts), the race of two attempts, each with its own AbortController that
 *   follows the caller's signal;
 * - `HedgeBudget` (hedge-budget.ts), the cap on the extra load: hedges as a share of reads over a
 *   sliding window;
 * - `HedgeDelay` (hedge-delay.ts), how long to wait: fixed, or the first endpoint's recent p95
 *   between a floor and a ceiling;
 * - `Hedging` (here), which puts them on the pool's endpoints: which reads may be hedged, where
 *   the hedge may go, and the counters stats() shows.
 *
 * A read that answers before the delay pays a timer, a light abort signal for its statement and
 * a few small objects; the budget, the choice of the second endpoint and its signal
 * wait for the delay to pass.
 */
import type { AbortSignalLike } from '../endpoint/abort-signal-like.js';
import type { Admission } from '../endpoint/admission.js';
import type { Endpoint, Statement } from '../endpoint/endpoint.js';
import type { ResolvedHedgeOptions } from '../options/hedge.js';
import type { QueryResultLike } from '../pg-like.js';
import type { ObservedCall } from '../telemetry/observer.js';
import { HedgeBudget } from './hedge-budget.js';
import { HedgeDelay } from './hedge-delay.js';
import { type HedgeEvents, hedge } from './hedge-race.js';
import type { Router } from './router.js';

/** What a read allows its hedge; shared constants, or one per read that must see a write. */
export interface HedgePlan {
  /**
   * The hedge may go to a writable endpoint (the primary as fallback, or a replica the probes
   * found writable): the caller said `idempotent: true`.
   */
  readonly mayUseWritable: boolean;
  /** Only endpoints passing this may take the hedge (replayed up to the read's token). */
  readonly accept: ((endpoint: Endpoint) => boolean) | undefined;
}

const TO_STANDBYS: HedgePlan = Object.freeze({ mayUseWritable: false, accept: undefined });
const ANYWHERE: HedgePlan = Object.freeze({ mayUseWritable: true, accept: undefined });

/** The counters of hedged reads in stats(). */
export interface HedgeStats {
  /** Read attempts that could have been hedged (hedging on, and the read allows it). */
  reads: number;
  /** Hedges sent: reads that had not answered after the delay and went to a second endpoint. */
  sent: number;
  /** Hedges whose answer was taken. */
  won: number;
  /**
   * Losers (of either side) still running when their grace after the winner's answer ended,
   * aborted and so cancelled on their server.
   */
  cancelled: number;
  /** Reads past the delay that were not hedged because the hedge budget was spent. */
  budgetRefused: number;
  /** Reads past the delay that were not hedged because no other endpoint could take them. */
  noTarget: number;
}

/**
 * The call a hedged read belongs to, as the race sees it: told where the hedge went, and its
 * telemetry told of the hedge and of a hedge's win. A hedge is not an attempt (an observed
 * call's attempts are sequential, and a change of endpoint between them is a failover): the
 * span gets a `resilient_pool.hedge` event, and the call is attributed to the hedge's endpoint
 * only if its answer was taken. stats().hedges counts the hedges.
 *
 * Nor does the retry path count a hedge: a race in which both sides failed is one attempt, on
 * the first endpoint, so the retry may send the read to the hedge's endpoint on another
 * connection, as it would an unhedged read's. Counting the hedge's endpoint as tried too sent
 * such retries to the primary, where a lost connection ends a read that may have written:
 * hedging then failed reads that an unhedged pool served (the drill's backends-terminated,
 * every node's backends ended at once).
 */
export interface HedgedCall {
  /** The call's telemetry, when something observes calls. */
  observed?: Pick<ObservedCall, 'hedge' | 'hedgeWon'> | undefined;
}

/**
 * Hedging on the pool's endpoints: one per pool, made only when the `hedge` option is on.
 *
 * Which reads, and where their hedge may go (the one place this is decided):
 * - never to the endpoint that has the first attempt;
 * - to a hot standby always: it cannot write, so the statement running there as well applied
 *   nothing twice (the rule that lets the retry path re-send a read that ran on one);
 * - to a writable endpoint (the primary, as the fallback) only when the read passes
 *   `idempotent: true`: a read() whose function writes would otherwise run twice where it can
 *   apply, and the loser's cancel may come after its commit;
 * - a read passing `idempotent: false` explicitly is never hedged, even where that would be
 *   safe: it is the one way a caller can say "send this once" (an expensive report, a function
 *   that reaches another server through dblink, which a standby can do too). Left out (the
 *   default), a read is hedged to hot standbys only;
 * - a read that must see a write goes only to endpoints that have replayed it (`planAfter`):
 *   when only the first endpoint has, it is not hedged.
 */
export class Hedging {
  readonly counters: HedgeStats = {
    reads: 0,
    sent: 0,
    won: 0,
    cancelled: 0,
    budgetRefused: 0,
    noTarget: 0,
  };
  private readonly budget: HedgeBudget;
  private readonly delay: HedgeDelay;
  private readonly cancelAfterMs: number;
  /** Without replicas a read has no second endpoint: nothing is hedged (or counted). */
  private readonly hasReplicas: boolean;

  constructor(
    options: Readonly<ResolvedHedgeOptions>,
    private readonly router: Router,
    /** The pool's lifetime: once `end()` is called no hedge is sent and no loser waits. */
    private readonly lifetime?: AbortSignal,
  ) {
    this.budget = new HedgeBudget(options.budgetPercent, options.budgetMinHedges);
    this.delay = new HedgeDelay(options);
    this.cancelAfterMs = options.cancelAfterMs;
    this.hasReplicas = router.replicas.length > 0;
  }

  /** The plan of a read given `idempotent` as the caller passed it; undefined: not hedged. */
  plan(idempotent: boolean | undefined): HedgePlan | undefined {
    if (idempotent === false || !this.hasReplicas) return undefined;
    return idempotent === true ? ANYWHERE : TO_STANDBYS;
  }

  /** The plan of a read that must see the write at `position` (a consistency token's LSN). */
  planAfter(idempotent: boolean | undefined, position: bigint): HedgePlan | undefined {
    if (idempotent === false || !this.hasReplicas) return undefined;
    const primary = this.router.primary;
    return {
      mayUseWritable: idempotent === true,
      // The primary has every write; a replica has what it has replayed (a lower bound).
      accept: (e) => e === primary || (e.replayLsn !== undefined && e.replayLsn >= position),
    };
  }

  /**
   * Runs `statement` on `first` (already admitted there) and, if it has not answered after the
   * delay, on a second endpoint the plan allows; `call` is told where the hedge went.
   */
  run(
    first: Endpoint,
    admitted: Admission,
    statement: Statement,
    signal: AbortSignal | undefined,
    plan: HedgePlan,
    call?: HedgedCall,
  ): Promise<QueryResultLike> {
    this.counters.reads++;
    this.budget.recordRead();
    const read = new HedgedRead(this, first, admitted, statement, plan, call);
    return hedge(
      read.startFirst,
      read.startHedge,
      this.delay.for(first.latency),
      signal,
      read,
      this.cancelAfterMs,
      this.lifetime,
    );
  }

  /** Once a second, from the pool's timer: slides the budget, re-reads the latencies. */
  rotate(): void {
    this.budget.rotate();
    this.delay.refresh();
  }

  stats(): HedgeStats {
    return { ...this.counters };
  }

  /**
   * The hedge of a read on `first`, once its delay has passed: the endpoint the plan allows, a
   * hedge from the budget, and a permit there. Undefined (no hedge) when any of them is missing.
   */
  takeHedge(
    first: Endpoint,
    plan: HedgePlan,
  ): { target: Endpoint; admitted: Admission } | undefined {
    if (this.lifetime?.aborted === true) return undefined;
    const target = this.target(first, plan);
    if (target === undefined) {
      this.counters.noTarget++;
      return undefined;
    }
    if (!this.budget.tryWithdraw()) {
      this.counters.budgetRefused++;
      return undefined;
    }
    const admitted = target.admit();
    // Usable a moment ago, so a refusal is a race with a state change: treat it as nowhere.
    if (admitted.kind === 'refused') {
      this.counters.noTarget++;
      return undefined;
    }
    this.counters.sent++;
    return { target, admitted };
  }

  /** Where the hedge of a read on `first` may go; undefined when nowhere. */
  private target(first: Endpoint, plan: HedgePlan): Endpoint | undefined {
    const { router } = this;
    const allowed = (e: Endpoint) =>
      e !== first &&
      e.isUsable() &&
      (plan.mayUseWritable || e.isHotStandby) &&
      (plan.accept === undefined || plan.accept(e));
    const replica = router.pickReplica(allowed);
    if (replica !== undefined) return replica;
    // The primary serves reads only as the fallback for health (or when there are no replicas at
    // all): saturated replicas are back-pressure, never a reason to load the primary.
    return router.primaryTakesReads(null) && allowed(router.primary) ? router.primary : undefined;
  }
}

/** One hedged read attempt: starts both sides when asked, and counts what the race reports. */
class HedgedRead implements HedgeEvents {
  /** Where the hedge went, once sent. */
  private hedgeTarget: Endpoint | undefined;

  constructor(
    private readonly hedging: Hedging,
    private readonly first: Endpoint,
    private readonly admitted: Admission,
    private readonly statement: Statement,
    private readonly plan: HedgePlan,
    private readonly call: HedgedCall | undefined,
  ) {}

  readonly startFirst = (signal: AbortSignalLike): Promise<QueryResultLike> =>
    this.first.execute(this.admitted, this.statement, signal);

  readonly startHedge = (signal: AbortSignalLike): Promise<QueryResultLike> | undefined => {
    const hedge = this.hedging.takeHedge(this.first, this.plan);
    if (hedge === undefined) return undefined;
    this.hedgeTarget = hedge.target;
    this.call?.observed?.hedge(hedge.target);
    return hedge.target.execute(hedge.admitted, this.statement, signal);
  };

  secondWon(): void {
    this.hedging.counters.won++;
    if (this.hedgeTarget !== undefined) this.call?.observed?.hedgeWon(this.hedgeTarget);
  }

  loserCancelled(): void {
    this.hedging.counters.cancelled++;
  }
}
