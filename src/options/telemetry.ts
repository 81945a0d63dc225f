/**
 * Validation of the `metrics` and `tracing` options. Each is off when absent or false; true is
 * `{}`. A provider left out is the global one of `@opentelemetry/api`, looked up here, once, so
 * that a missing API is a ConfigError at construction rather than silence in production.
 */
import { otelApi } from '../telemetry/otel/load-api.js';
import { DEFAULTS } from './defaults.js';
import type { ResolvedMetrics, ResolvedTracing } from './resolved.js';
import { type Check, checkGroup, describe, hasMethods, isBoolean, type Schema } from './schema.js';
import type { MetricsOptions, TracingOptions } from './telemetry-types.js';

const isMeterProvider: Check = (v) =>
  hasMethods(v, ['getMeter']) ? undefined : 'must be a MeterProvider (an object with getMeter)';
const isTracerProvider: Check = (v) =>
  hasMethods(v, ['getTracer']) ? undefined : 'must be a TracerProvider (an object with getTracer)';

const METRICS: Schema = { meterProvider: isMeterProvider };
const TRACING: Schema = { tracerProvider: isTracerProvider, queryText: isBoolean };

const noApi = (option: string, provider: string) =>
  `${option}: @opentelemetry/api cannot be loaded; install it (\`npm install @opentelemetry/api\`) or pass \`${option}: { ${provider} }\``;

/**
 * The group's given keys, or undefined when the option is off. True stands for `{}`; anything but
 * a boolean or a plain object is a problem.
 */
function group(
  path: string,
  value: unknown,
  schema: Schema,
  problems: string[],
): Record<string, unknown> | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(`${path}: must be true, false or an object, got ${describe(value)}`);
    return undefined;
  }
  const before = problems.length;
  const given = checkGroup(path, value, schema, problems);
  return problems.length === before ? given : undefined;
}

export function resolveMetricsOptions(
  value: unknown,
  problems: string[],
): ResolvedMetrics | undefined {
  const given = group('metrics', value, METRICS, problems) as MetricsOptions | undefined;
  if (given === undefined) return undefined;
  if (given.meterProvider !== undefined) return { meterProvider: given.meterProvider };
  const api = otelApi();
  if (api === null) {
    problems.push(noApi('metrics', 'meterProvider'));
    return undefined;
  }
  return { meterProvider: api.metrics.getMeterProvider() };
}

export function resolveTracingOptions(
  value: unknown,
  problems: string[],
): ResolvedTracing | undefined {
  const given = group('tracing', value, TRACING, problems) as TracingOptions | undefined;
  if (given === undefined) return undefined;
  const queryText = given.queryText ?? DEFAULTS.tracing.queryText;
  // Without the API a given provider still makes spans, but without parents or children.
  const api = otelApi();
  if (given.tracerProvider !== undefined) {
    return { tracerProvider: given.tracerProvider, queryText, api };
  }
  if (api === null) {
    problems.push(noApi('tracing', 'tracerProvider'));
    return undefined;
  }
  return { tracerProvider: api.trace.getTracerProvider(), queryText, api };
}
