/**
 * `node:diagnostics_channel` publications, so that an APM or a test can observe the pool with no
 * dependency and no option, as undici does: a TracingChannel `resilient-pool:query` around every
 * call, and one channel per event (`resilient-pool:breaker`, `:retry`, `:failover`, `:reject`,
 * `:eject`, `:readmit`, `:down`, `:up`). Nothing is built or published while nobody subscribes
 * (`hasSubscribers`), so the publications cost nothing then.
 *
 * Secrecy: what this module puts in a message never holds a parameter value or a password. The
 * query context has the statement's text (no values) and endpoint names; a retry's error is
 * described by its name, code and class, never its message, which PostgreSQL may fill with a
 * parameter value. The query context's `result` and `error` are set by Node's tracePromise: they
 * are the call's own outcome, the very objects the caller gets.
 */
import diagnostics from 'node:diagnostics_channel';
import { classify, type ErrorClass } from '../classify.js';
import type { ResilientPoolEvents } from './events.js';
import type { CallKind } from './observer.js';
import { errorCode } from './otel/attributes.js';

/** The context object of the `resilient-pool:query` tracing channel, one per call. */
export interface QueryChannelContext {
  kind: CallKind;
  /** What the call asked for: a read or a write. */
  role: 'read' | 'write';
  /** The statement's text (no parameter values); undefined for a checkout. */
  text: string | undefined;
  /** The endpoint of the latest attempt; undefined until one is made. */
  endpoint: string | undefined;
  /** Attempts made so far (1 without a retry). */
  attempts: number;
  /**
   * Set when the latest attempt's read was hedged: the endpoint the hedge went to. When the
   * hedge's answer is taken, `endpoint` becomes that endpoint too.
   */
  hedgedTo?: string;
  /** Set by tracePromise on `asyncStart`/`asyncEnd` when the call succeeded. */
  result?: unknown;
  /** Set by tracePromise on `error` when the call failed. */
  error?: unknown;
}

/** A retry's error as the `resilient-pool:retry` channel describes it. */
export interface DescribedError {
  name: string | undefined;
  /**
   * A SQLSTATE, this library's code (`E_...`), a system error's (`ECONNRESET`) or Node's
   * (`ERR_...`); undefined for any other code.
   */
  code: string | undefined;
  errorClass: ErrorClass;
}

/** The messages of the event channels: the events' payloads, a retry's error described. */
export interface DiagnosticsMessages {
  breaker: ResilientPoolEvents['breaker'];
  retry: Omit<ResilientPoolEvents['retry'], 'error'> & { error: DescribedError };
  failover: ResilientPoolEvents['failover'];
  reject: ResilientPoolEvents['reject'];
  eject: ResilientPoolEvents['eject'];
  readmit: ResilientPoolEvents['readmit'];
  routing: ResilientPoolEvents['routing'];
  down: ResilientPoolEvents['down'];
  up: ResilientPoolEvents['up'];
}

export type DiagnosticsEventName = keyof DiagnosticsMessages;

/** The channel names, for subscribers: `diagnostics_channel.subscribe(CHANNELS.breaker, ...)`. */
export const DIAGNOSTICS_CHANNELS = {
  query: 'resilient-pool:query',
  breaker: 'resilient-pool:breaker',
  retry: 'resilient-pool:retry',
  failover: 'resilient-pool:failover',
  reject: 'resilient-pool:reject',
  eject: 'resilient-pool:eject',
  readmit: 'resilient-pool:readmit',
  routing: 'resilient-pool:routing',
  down: 'resilient-pool:down',
  up: 'resilient-pool:up',
} as const;

// Channels are process-wide by name (and held by Node once subscribed): one of each per module.
const queryChannel = diagnostics.tracingChannel<unknown, QueryChannelContext>(
  DIAGNOSTICS_CHANNELS.query,
);
const eventChannels: Readonly<Record<DiagnosticsEventName, diagnostics.Channel>> = {
  breaker: diagnostics.channel(DIAGNOSTICS_CHANNELS.breaker),
  retry: diagnostics.channel(DIAGNOSTICS_CHANNELS.retry),
  failover: diagnostics.channel(DIAGNOSTICS_CHANNELS.failover),
  reject: diagnostics.channel(DIAGNOSTICS_CHANNELS.reject),
  eject: diagnostics.channel(DIAGNOSTICS_CHANNELS.eject),
  readmit: diagnostics.channel(DIAGNOSTICS_CHANNELS.readmit),
  routing: diagnostics.channel(DIAGNOSTICS_CHANNELS.routing),
  down: diagnostics.channel(DIAGNOSTICS_CHANNELS.down),
  up: diagnostics.channel(DIAGNOSTICS_CHANNELS.up),
};

/** Whether a pool event has a diagnostics channel of its own. */
export function isDiagnosticsEvent(event: string): event is DiagnosticsEventName {
  return Object.hasOwn(eventChannels, event);
}

/**
 * Whether anyone subscribed to any of the query channel's five channels. (TracingChannel's own
 * `hasSubscribers` is newer than Node 20.0; this is what it computes.)
 */
export function querySubscribed(): boolean {
  const q = queryChannel;
  return (
    q.start.hasSubscribers ||
    q.end.hasSubscribers ||
    q.asyncStart.hasSubscribers ||
    q.asyncEnd.hasSubscribers ||
    q.error.hasSubscribers
  );
}

/** Runs `call` under the query channel (start, end, asyncStart, asyncEnd, error). */
export function traceQuery<T>(context: QueryChannelContext, call: () => Promise<T>): Promise<T> {
  return queryChannel.tracePromise(call, context);
}

/** Publications of the pool's events; the pool calls `publish` next to each event it emits. */
export interface TelemetryEvents {
  publish<E extends DiagnosticsEventName>(event: E, payload: ResilientPoolEvents[E]): void;
}

function describeRetryError(error: unknown): DescribedError {
  const name = (error as { name?: unknown } | null | undefined)?.name;
  return {
    name: typeof name === 'string' ? name : undefined,
    code: errorCode(error),
    errorClass: classify(error),
  };
}

/** The event channels: a message is built only when someone subscribed to its channel. */
export const diagnosticsEvents: TelemetryEvents = {
  publish(event, payload) {
    const channel = eventChannels[event];
    if (!channel.hasSubscribers) return;
    if (event === 'retry') {
      const retry = payload as ResilientPoolEvents['retry'];
      const message: DiagnosticsMessages['retry'] = {
        endpoint: retry.endpoint,
        attempt: retry.attempt,
        delayMs: retry.delayMs,
        error: describeRetryError(retry.error),
      };
      channel.publish(message);
      return;
    }
    // A copy: a subscriber cannot change what the pool's own listeners get.
    channel.publish({ ...payload });
  },
};
