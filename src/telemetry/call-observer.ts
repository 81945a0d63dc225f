/**
 * The pool's CallTelemetry: one observation per call, feeding whichever of the three sinks are
 * on (the operation-duration histogram, the call's span, the `resilient-pool:query` tracing
 * channel). Which are on is decided once, when the call begins.
 *
 * Telemetry never breaks a call: a sink that throws (a provider's bug) is reported once through
 * the logger and ignored, and the call's own promise is what the caller gets, unchanged when
 * neither a span nor the channel wraps it.
 */
import { type QueryChannelContext, querySubscribed, traceQuery } from './diagnostics.js';
import type { LoggerLike } from './logger.js';
import type {
  CallStart,
  CallTelemetry,
  ObservedCall,
  ObservedEndpoint,
  RetryNote,
} from './observer.js';
import type { OtelContext, SpanLike } from './otel/api-types.js';
import type { PoolMetrics } from './otel/metrics.js';
import type { CallTracer } from './otel/tracing.js';

export class CallObserver implements CallTelemetry {
  private reported = false;
  /** Metrics or tracing are on: every call is observed, subscribers or not. */
  private readonly always: boolean;

  constructor(
    readonly metrics: PoolMetrics | undefined,
    readonly tracer: CallTracer | undefined,
    private readonly logger: LoggerLike | undefined,
  ) {
    this.always = metrics !== undefined || tracer !== undefined;
  }

  get active(): boolean {
    return this.always || querySubscribed();
  }

  begin(start: CallStart): ObservedCall {
    return new Observation(this, start, querySubscribed());
  }

  /** A sink threw: said once, then ignored (telemetry must not fail calls, nor flood logs). */
  failed(err: unknown): void {
    if (this.reported) return;
    this.reported = true;
    this.logger?.warn(
      { err: { name: (err as Error)?.name, message: (err as Error)?.message } },
      'resilient-pool: telemetry failed; calls go on, further telemetry failures are not logged',
    );
  }
}

class Observation implements ObservedCall {
  private readonly startedAt = performance.now();
  private endpoint: ObservedEndpoint | undefined;
  private attempts = 0;
  private span: SpanLike | undefined;
  private spanContext: OtelContext | undefined;
  private readonly channel: QueryChannelContext | undefined;

  constructor(
    private readonly owner: CallObserver,
    private readonly start: CallStart,
    published: boolean,
  ) {
    this.channel = published
      ? { kind: start.kind, role: start.role, text: start.text, endpoint: undefined, attempts: 0 }
      : undefined;
    if (owner.tracer === undefined) return;
    try {
      const started = owner.tracer.start(start);
      this.span = started.span;
      this.spanContext = started.context;
    } catch (err) {
      owner.failed(err);
    }
  }

  run<T>(call: () => Promise<T>): Promise<T> {
    const { tracer } = this.owner;
    const context = this.spanContext;
    const inSpan =
      tracer !== undefined && context !== undefined ? () => tracer.runIn(context, call) : call;
    const promise = this.channel === undefined ? inSpan() : traceQuery(this.channel, inSpan);
    // A side branch: the caller gets `promise` itself, and its rejection stays the caller's.
    promise.then(
      () => this.finish(false, undefined),
      (err: unknown) => this.finish(true, err),
    );
    return promise;
  }

  attempt(endpoint: ObservedEndpoint): void {
    const previous = this.endpoint;
    this.endpoint = endpoint;
    this.attempts++;
    if (this.channel !== undefined) {
      this.channel.endpoint = endpoint.name;
      this.channel.attempts = this.attempts;
    }
    if (this.span === undefined) return;
    try {
      this.owner.tracer?.attempt(this.span, endpoint, previous, this.attempts);
    } catch (err) {
      this.owner.failed(err);
    }
  }

  retry(note: RetryNote): void {
    if (this.span === undefined) return;
    try {
      this.owner.tracer?.retry(this.span, note);
    } catch (err) {
      this.owner.failed(err);
    }
  }

  hedge(endpoint: ObservedEndpoint): void {
    if (this.channel !== undefined) this.channel.hedgedTo = endpoint.name;
    if (this.span === undefined) return;
    try {
      this.owner.tracer?.hedge(this.span, this.endpoint, endpoint, this.attempts);
    } catch (err) {
      this.owner.failed(err);
    }
  }

  hedgeWon(endpoint: ObservedEndpoint): void {
    // The answer came from there: the span, the channel and the duration say so (no failover:
    // the first endpoint's statement is the loser, not a failed attempt).
    this.endpoint = endpoint;
    if (this.channel !== undefined) this.channel.endpoint = endpoint.name;
    if (this.span === undefined) return;
    try {
      this.owner.tracer?.hedgeWon(this.span, endpoint, this.attempts);
    } catch (err) {
      this.owner.failed(err);
    }
  }

  private finish(failed: boolean, error: unknown): void {
    const { metrics, tracer } = this.owner;
    try {
      // A checkout is no database operation: its wait shows in db.client.connection.wait_time.
      if (metrics !== undefined && this.start.kind === 'statement') {
        const seconds = (performance.now() - this.startedAt) / 1000;
        metrics.operation(this.endpoint, this.start.text, seconds, failed, error);
      }
      if (this.span !== undefined) {
        tracer?.end(this.span, this.endpoint, this.attempts, failed, error);
      }
    } catch (err) {
      this.owner.failed(err);
    }
  }
}
