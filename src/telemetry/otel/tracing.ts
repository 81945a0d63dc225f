/**
 * One OpenTelemetry span per call, by the conventions for database client spans: kind CLIENT,
 * named after the statement's command (`SELECT`, `INSERT`, ...; `postgresql` when the text has
 * none; `resilient-pool.connect` for a checkout), a child of the context active when the call
 * began, covering the whole call with its retries. The endpoint that answered (or the last one
 * tried; for a read whose hedge won, the hedge's) sets `server.address`, `server.port`,
 * `db.namespace` and `resilient_pool.endpoint`; each retry, each move to another endpoint, each
 * hedge sent and a hedge's win are span events.
 *
 * Secrecy: `db.query.text` only with `queryText: true`; never a parameter value, a password or
 * an error's message (the status of a failed span has `error.type`, no description).
 */
import type { ResolvedTracing } from '../../options/resolved.js';
import type { CallStart, ObservedEndpoint, RetryNote } from '../observer.js';
import type { OtelContext, SpanLike, TracerLike } from './api-types.js';
import {
  DB_SYSTEM,
  errorType,
  operationName,
  responseStatusCode,
  serverAttributes,
} from './attributes.js';

const SPAN_KIND_CLIENT = 2;
const STATUS_ERROR = 2;

/** The span name of a checkout (`connect()`), which runs no statement of its own. */
export const CHECKOUT_SPAN = 'resilient-pool.connect';

export class CallTracer {
  private readonly tracer: TracerLike;

  constructor(private readonly settings: ResolvedTracing) {
    this.tracer = settings.tracerProvider.getTracer('resilient-pool');
  }

  /** Starts the call's span, a child of the active context. */
  start(call: CallStart): { span: SpanLike; context: OtelContext | undefined } {
    const api = this.settings.api;
    const operation = call.kind === 'statement' ? operationName(call.text) : undefined;
    const name = call.kind === 'checkout' ? CHECKOUT_SPAN : (operation ?? DB_SYSTEM);
    const attributes: Record<string, string> = {
      'db.system.name': DB_SYSTEM,
      'resilient_pool.call.role': call.role,
    };
    if (operation !== undefined) attributes['db.operation.name'] = operation;
    if (this.settings.queryText && call.text !== undefined) {
      attributes['db.query.text'] = call.text;
    }
    const parent = api?.context.active();
    const span = this.tracer.startSpan(name, { kind: SPAN_KIND_CLIENT, attributes }, parent);
    return { span, context: api && parent ? api.trace.setSpan(parent, span) : undefined };
  }

  /** Runs `call` with the span's context active, so spans started under it are its children. */
  runIn<T>(context: OtelContext | undefined, call: () => Promise<T>): Promise<T> {
    const api = this.settings.api;
    return api && context ? api.context.with(context, call) : call();
  }

  /** An attempt goes to `endpoint`: a move from `previous` (another endpoint) is an event. */
  attempt(
    span: SpanLike,
    endpoint: ObservedEndpoint,
    previous: ObservedEndpoint | undefined,
    attempt: number,
  ): void {
    if (previous === undefined || previous === endpoint) return;
    span.addEvent('resilient_pool.failover', {
      'resilient_pool.attempt': attempt,
      'resilient_pool.failover.from': previous.name,
      'resilient_pool.failover.to': endpoint.name,
    });
  }

  retry(span: SpanLike, note: RetryNote): void {
    span.addEvent('resilient_pool.retry', {
      'resilient_pool.attempt': note.attempt,
      'resilient_pool.endpoint': note.endpoint.name,
      'resilient_pool.retry.reason': note.reason,
      'resilient_pool.retry.delay_ms': note.delayMs,
      'error.type': errorType(note.error),
    });
  }

  /** The read of attempt `attempt` on `from` was hedged to `to`. */
  hedge(
    span: SpanLike,
    from: ObservedEndpoint | undefined,
    to: ObservedEndpoint,
    attempt: number,
  ): void {
    span.addEvent('resilient_pool.hedge', {
      'resilient_pool.attempt': attempt,
      ...(from === undefined ? {} : { 'resilient_pool.hedge.from': from.name }),
      'resilient_pool.hedge.to': to.name,
    });
  }

  /** The hedge's answer, from `endpoint`, was taken. */
  hedgeWon(span: SpanLike, endpoint: ObservedEndpoint, attempt: number): void {
    span.addEvent('resilient_pool.hedge_won', {
      'resilient_pool.attempt': attempt,
      'resilient_pool.endpoint': endpoint.name,
    });
  }

  /** Ends the span with where the call ran last, its attempts, and its outcome. */
  end(
    span: SpanLike,
    endpoint: ObservedEndpoint | undefined,
    attempts: number,
    failed: boolean,
    error: unknown,
  ): void {
    if (span.isRecording()) {
      if (endpoint !== undefined) {
        for (const [key, value] of Object.entries(serverAttributes(endpoint))) {
          span.setAttribute(key, value);
        }
        span.setAttribute('resilient_pool.endpoint', endpoint.name);
        span.setAttribute('resilient_pool.role', endpoint.role);
      }
      span.setAttribute('resilient_pool.attempts', attempts);
      if (failed) {
        span.setAttribute('error.type', errorType(error));
        const status = responseStatusCode(error);
        if (status !== undefined) span.setAttribute('db.response.status_code', status);
        span.setStatus({ code: STATUS_ERROR });
      }
    }
    span.end();
  }
}
