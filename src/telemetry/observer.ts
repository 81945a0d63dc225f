/**
 * What the call path and the endpoints tell telemetry (OpenTelemetry metrics and spans,
 * diagnostics_channel publications). Kept as interfaces here so that neither the call path nor
 * the endpoint imports an implementation: with metrics, tracing and every channel subscriber
 * absent the pool holds `undefined` sinks, and the hot path pays one comparison.
 */
import type { ErrorClass } from '../classify.js';
import type { EndpointRole } from './events.js';

/**
 * Where an endpoint's pool connects, as OpenTelemetry's semantic conventions name it. Read once
 * from the wrapped pool's options (host, port, database, or its connection string) at
 * construction; never the user or the password.
 */
export interface EndpointAttributes {
  'server.address'?: string;
  'server.port'?: number;
  'db.namespace'?: string;
}

/** What telemetry knows of an endpoint: no Endpoint class, so no import cycle. */
export interface ObservedEndpoint {
  readonly name: string;
  readonly role: EndpointRole;
  readonly attributes: EndpointAttributes;
}

/** A statement call (`query`, `read`, `write`, cache fills) or a checkout (`connect`). */
export type CallKind = 'statement' | 'checkout';

/** A call as it starts. */
export interface CallStart {
  kind: CallKind;
  role: 'read' | 'write';
  /**
   * The statement's text (undefined for a checkout). Spans carry it only when the user opted in
   * (`tracing.queryText`), since it can carry secrets; parameter values are never given here.
   */
  text: string | undefined;
}

/** A failed attempt that is being tried again. */
export interface RetryNote {
  /** The endpoint of the attempt that failed. */
  endpoint: ObservedEndpoint;
  /** The number of the attempt about to be made (2 for the first retry). */
  attempt: number;
  delayMs: number;
  /** Why: the failure's class (connection, timeout, read-only, stale-statement, ...). */
  reason: ErrorClass;
  error: unknown;
}

/** The telemetry of calls: one per pool, present only when something observes calls. */
export interface CallTelemetry {
  /**
   * Whether calls are observed right now: metrics or tracing are on, or someone subscribed to
   * the `resilient-pool:query` tracing channel. Read once per call.
   */
  readonly active: boolean;
  begin(start: CallStart): ObservedCall;
}

/** One observed call, from `begin` until the promise given to `run` settles. */
export interface ObservedCall {
  /**
   * Runs the call (inside its span's context, so spans started beneath it, pg's own included,
   * are its children) and ends the observation when the promise settles, with its outcome.
   */
  run<T>(call: () => Promise<T>): Promise<T>;
  /** An attempt is sent to `endpoint` (the first, and each retry's). */
  attempt(endpoint: ObservedEndpoint): void;
  /** The attempt failed and another follows after `delayMs`. */
  retry(note: RetryNote): void;
  /**
   * The attempt's read had not answered after the hedge delay and was sent to `endpoint` too
   * (a second statement racing the first; not an attempt of its own: see routing/hedge.ts).
   */
  hedge(endpoint: ObservedEndpoint): void;
  /** The hedge's answer was taken: the call's result came from `endpoint`. */
  hedgeWon(endpoint: ObservedEndpoint): void;
}

/**
 * Per-connection timings of one endpoint, for the connection-pool metrics. Set on an endpoint
 * only while metrics are on; stats() keeps its own percentiles either way.
 */
export interface ConnectionTimings {
  /** A call waited `ms` for a client (our queue plus the wrapped pool's); `timedOut` if none came. */
  waited(endpoint: ObservedEndpoint, ms: number, timedOut: boolean): void;
  /** A client was held `ms` (from checkout to its return to the pool). */
  used(endpoint: ObservedEndpoint, ms: number): void;
  /** A new connection was opened in `ms`. */
  created(endpoint: ObservedEndpoint, ms: number): void;
}
