/**
 * Endpoint health: one timer for the whole pool probes every endpoint (the primary too, also when
 * it has no replicas), declares down an endpoint that stops answering, ejects a replica whose
 * probe fails or whose circuit opens, holds back a replica that lags past the thresholds, and
 * re-admits an ejected replica only after a probe succeeds (not merely after a timer: the
 * mysql2 PoolCluster trap), waiting longer each time it keeps failing.
 *
 * Outlier ejection (routing/outlier-ejection.ts) learns from the probes too: it is told when
 * each probe starts and settles, and may ask for one out of the rounds (`probeNow`) when a
 * replica's statements go unanswered, so that a silent replica is confirmed in well under a
 * round.
 */
import { classify, isServerError } from '../classify.js';
import type { Endpoint } from '../endpoint/endpoint.js';
import type { ResilientPoolEvents } from '../telemetry/events.js';
import type { LoggerLike } from '../telemetry/logger.js';
import { type ProbeResult, Prober } from './probe.js';

export interface HealthSettings {
  intervalMs: number;
  timeoutMs: number;
  maxLagMs: number | undefined;
  maxLagBytes: number | undefined;
}

export interface HealthHooks {
  eject(payload: ResilientPoolEvents['eject']): void;
  readmit(payload: ResilientPoolEvents['readmit']): void;
  /** A probe of the endpoint failed (each round it keeps failing). */
  probeFailed(endpoint: Endpoint): void;
  /** A probe of the endpoint was sent (a round's, or one asked for with `probeNow`). */
  probeStarted?(endpoint: Endpoint): void;
  /**
   * The probe settled. `answered`: the server answered it, with a result or an error of its
   * own (a refusal such as 53300 is an answer too); false for no answer in time or a lost
   * connection.
   */
  probeSettled?(endpoint: Endpoint, answered: boolean): void;
}

/** Re-admission waits 1 s, 2 s, 4 s ... up to this after repeated ejections. */
const MAX_BACKOFF_MS = 30_000;
/** Healthy this long after a re-admission, the ejection count starts again. */
const STABLE_AFTER_MS = 60_000;

interface Tracked {
  endpoint: Endpoint;
  prober: Prober;
  probing: boolean;
  ejectedAt: number;
  readmittedAt: number;
}

/** Calls the endpoint's server has answered so far (results and SQL errors). */
function answeredCalls(endpoint: Endpoint): number {
  return endpoint.counters.successes + endpoint.counters.sqlErrors;
}

export class HealthMonitor {
  private readonly tracked: Tracked[];
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Set by `stop()`: a probe that settles after it changes nothing. */
  private stopped = false;

  constructor(
    endpoints: readonly Endpoint[],
    private readonly settings: HealthSettings,
    private readonly hooks: HealthHooks,
    private readonly logger: LoggerLike,
  ) {
    this.tracked = endpoints.map((endpoint) => ({
      endpoint,
      prober: new Prober(endpoint.pool, settings.timeoutMs),
      probing: false,
      ejectedAt: 0,
      readmittedAt: 0,
    }));
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.settings.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const t of this.tracked) t.prober.close();
  }

  /** A replica whose circuit opened is ejected at once; the probes decide when it is back. */
  onBreakerOpen(endpoint: Endpoint): void {
    const t = this.tracked.find((x) => x.endpoint === endpoint);
    if (t !== undefined && endpoint.role === 'replica') this.eject(t, 'circuit open');
  }

  /**
   * Probes `endpoint` now, out of the rounds, unless a probe of it is already running (outlier
   * ejection asks when a replica's statements go unanswered). A failure counts as a round's
   * would; a success lifts a down endpoint, while lag and re-admission wait for the next round,
   * which compares the replica with the primary.
   */
  probeNow(endpoint: Endpoint): void {
    const t = this.tracked.find((x) => x.endpoint === endpoint);
    if (t === undefined || t.probing || this.stopped) return;
    t.probing = true;
    const answeredBefore = answeredCalls(endpoint);
    void this.probe(t).then(
      () => {
        t.probing = false;
        if (!this.stopped) endpoint.markUp();
      },
      (reason: unknown) => {
        t.probing = false;
        if (!this.stopped) {
          this.onProbeFailed(t, reason, answeredBefore !== answeredCalls(endpoint));
        }
      },
    );
  }

  /** One round of probes (run by the timer; exposed for tests). */
  async tick(): Promise<void> {
    const round = this.tracked.filter((t) => !t.probing);
    for (const t of round) t.probing = true;
    const answeredBefore = round.map((t) => answeredCalls(t.endpoint));
    const outcomes = await Promise.allSettled(round.map((t) => this.probe(t)));
    for (const t of round) t.probing = false;
    if (this.stopped) return;
    const primaryIndex = round.findIndex((t) => t.endpoint.role === 'primary');
    const primaryOutcome = primaryIndex >= 0 ? outcomes[primaryIndex] : undefined;
    const primaryLsn =
      primaryOutcome?.status === 'fulfilled' && !primaryOutcome.value.inRecovery
        ? primaryOutcome.value.lsn
        : undefined;
    const now = Date.now();
    round.forEach((t, i) => {
      const outcome = outcomes[i]!;
      if (outcome.status === 'rejected') {
        this.onProbeFailed(t, outcome.reason, answeredBefore[i] !== answeredCalls(t.endpoint));
        return;
      }
      t.endpoint.markUp();
      this.record(t, outcome.value, primaryLsn, now);
    });
  }

  /** One probe, reported to the hooks as it starts and settles (they never break the probe). */
  private probe(t: Tracked): Promise<ProbeResult> {
    const { hooks, logger } = this;
    const report = (what: () => void) => {
      try {
        what();
      } catch (err) {
        logger.error({ err, endpoint: t.endpoint.name }, 'resilient-pool: probe hook threw');
      }
    };
    if (hooks.probeStarted !== undefined) report(() => hooks.probeStarted?.(t.endpoint));
    const probing = t.prober.probe();
    if (hooks.probeSettled === undefined) return probing;
    return probing.then(
      (result) => {
        report(() => hooks.probeSettled?.(t.endpoint, true));
        return result;
      },
      (reason: unknown) => {
        report(() => hooks.probeSettled?.(t.endpoint, isServerError(reason)));
        throw reason;
      },
    );
  }

  /**
   * A failed probe ejects a replica from routing. One that got no answer, or found the server
   * unreachable (a connection-class error), also declares the endpoint down (its calls in flight are ended), unless calls on
   * the endpoint were answered meanwhile: then the server is answering, and only the probe's own
   * connection was slow or lost.
   */
  private onProbeFailed(t: Tracked, reason: unknown, othersAnswered: boolean): void {
    const message = `probe failed: ${(reason as Error)?.message ?? String(reason)}`;
    if (t.endpoint.role === 'replica') this.eject(t, message);
    else t.endpoint.health.reason = message;
    this.hooks.probeFailed(t.endpoint);
    // Only a server that does not answer, or cannot be reached, is down; one that answers 'too
    // many connections' (53300) is busy, and ending its calls would only add to its trouble.
    if (classify(reason) !== 'connection') return;
    if (othersAnswered) {
      this.logger.debug(
        { endpoint: t.endpoint.name, reason: message },
        'resilient-pool: a probe failed while the endpoint answered other calls; not declared down',
      );
      return;
    }
    t.endpoint.markDown(message, reason);
  }

  private record(
    t: Tracked,
    result: ProbeResult,
    primaryLsn: bigint | undefined,
    now: number,
  ): void {
    const { endpoint } = t;
    const health = endpoint.health;
    if (endpoint.role === 'primary') {
      health.inRecovery = result.inRecovery;
      health.state = 'healthy';
      health.lagBytes = 0;
      health.lagMs = 0;
      health.reason = null;
      return;
    }
    const lagBytes =
      primaryLsn !== undefined && result.lsn !== undefined
        ? Number(primaryLsn > result.lsn ? primaryLsn - result.lsn : 0n)
        : null;
    // An idle primary writes nothing, so the last replayed commit ages without any lag: a
    // standby that has replayed all it received, and nothing the primary has, is not behind.
    const caughtUp =
      result.lsn !== undefined &&
      result.receiveLsn !== undefined &&
      result.lsn >= result.receiveLsn &&
      (lagBytes === null || lagBytes === 0);
    health.lagBytes = lagBytes;
    health.lagMs = caughtUp ? 0 : result.replayAgeMs;
    health.inRecovery = result.inRecovery;
    if (result.inRecovery) endpoint.noteReplayLsn(result.lsn);
    if (health.state === 'ejected') {
      const backoff = Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** Math.max(0, health.ejections - 1));
      if (now - t.ejectedAt < backoff) return;
      t.readmittedAt = now;
      endpoint.setRoutable(true);
      health.state = 'healthy';
      health.reason = null;
      this.logger.info(
        { endpoint: endpoint.name, ejectedMs: now - t.ejectedAt },
        `resilient-pool: replica "${endpoint.name}" passed a probe; re-admitted`,
      );
      this.hooks.readmit({ endpoint: endpoint.name, ejectedMs: now - t.ejectedAt });
    } else if (t.readmittedAt > 0 && now - t.readmittedAt > STABLE_AFTER_MS) {
      health.ejections = 0;
    }
    const behind = this.lagReason(health.lagBytes, health.lagMs);
    health.state = behind === null ? 'healthy' : 'lagging';
    health.reason = behind;
    endpoint.setRoutable(behind === null);
  }

  private lagReason(lagBytes: number | null, lagMs: number | null): string | null {
    const { maxLagBytes, maxLagMs } = this.settings;
    if (maxLagBytes !== undefined && lagBytes !== null && lagBytes > maxLagBytes) {
      return `${lagBytes} bytes behind (routing.maxLagBytes ${maxLagBytes})`;
    }
    if (maxLagMs !== undefined && lagMs !== null && lagMs > maxLagMs) {
      return `${Math.round(lagMs)} ms behind (routing.maxLagMs ${maxLagMs})`;
    }
    return null;
  }

  private eject(t: Tracked, reason: string): void {
    const health = t.endpoint.health;
    if (health.state === 'ejected') return;
    health.state = 'ejected';
    health.reason = reason;
    health.ejections++;
    t.ejectedAt = Date.now();
    t.endpoint.setRoutable(false);
    this.logger.warn(
      { endpoint: t.endpoint.name, reason },
      `resilient-pool: replica "${t.endpoint.name}" ejected: ${reason}`,
    );
    this.hooks.eject({ endpoint: t.endpoint.name, reason });
  }
}
