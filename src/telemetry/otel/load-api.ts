/**
 * `@opentelemetry/api`, required only when metrics or tracing are turned on: it is an optional
 * peer dependency, so neither build of this library imports it at load time. Every copy of the
 * 1.x API shares its registrations through one global, so the copy found from here sees the
 * providers and the context manager the application registered with its own copy.
 */
import { optionalRequire } from '../../optional-require.js';
import type { OtelApi } from './api-types.js';

let api: OtelApi | null | undefined;

function isOtelApi(mod: unknown): mod is OtelApi {
  const m = mod as Partial<Record<keyof OtelApi, Record<string, unknown>>> | undefined;
  return (
    typeof m?.metrics?.getMeterProvider === 'function' &&
    typeof m.trace?.getTracerProvider === 'function' &&
    typeof m.trace.setSpan === 'function' &&
    typeof m.context?.active === 'function' &&
    typeof m.context.with === 'function'
  );
}

/** The OpenTelemetry API, or null when it cannot be loaded from here. Looked up once. */
export function otelApi(): OtelApi | null {
  if (api === undefined) {
    const mod = optionalRequire('@opentelemetry/api');
    api = isOtelApi(mod) ? mod : null;
  }
  return api;
}
