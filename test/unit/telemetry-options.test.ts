/**
 * The `metrics` and `tracing` options: off when absent or false, the global providers of
 * @opentelemetry/api for true or `{}`, the given ones otherwise; every bad value and unknown key
 * listed in one ConfigError with the others; and, where the API cannot be loaded, a ConfigError
 * that says what to install, unless a provider was given.
 */
import { metrics, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { resolveOptions } from '../../src/options/pool.js';
import { FakeMeterProvider, FakeTracerProvider } from '../support/fake-otel.js';
import { FakePool } from '../support/fake-pool.js';

function problemsOf(input: Record<string, unknown>): readonly string[] {
  try {
    resolveOptions({ primary: new FakePool(), ...input });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('metrics and tracing options', () => {
  it('are off when left out or false', () => {
    for (const off of [{}, { metrics: false, tracing: false }, { metrics: undefined }]) {
      const resolved = resolveOptions({ primary: new FakePool(), ...off });
      expect(resolved.metrics).toBeUndefined();
      expect(resolved.tracing).toBeUndefined();
    }
  });

  it('take the global providers of @opentelemetry/api for true or {}', () => {
    for (const on of [true, {}]) {
      const resolved = resolveOptions({ primary: new FakePool(), metrics: on, tracing: on });
      expect(resolved.metrics?.meterProvider).toBe(metrics.getMeterProvider());
      expect(resolved.tracing?.tracerProvider).toBe(trace.getTracerProvider());
      expect(resolved.tracing?.queryText).toBe(false);
      expect(resolved.tracing?.api?.trace.setSpan).toBe(trace.setSpan);
    }
  });

  it('take the providers given, and queryText', () => {
    const meterProvider = new FakeMeterProvider();
    const tracerProvider = new FakeTracerProvider();
    const resolved = resolveOptions({
      primary: new FakePool(),
      metrics: { meterProvider },
      tracing: { tracerProvider, queryText: true },
    });
    expect(resolved.metrics?.meterProvider).toBe(meterProvider);
    expect(resolved.tracing).toMatchObject({ tracerProvider, queryText: true });
  });

  it('list every bad value and unknown key at once, with the other problems', () => {
    expect(
      problemsOf({
        queue: { maxWaiting: -1 },
        metrics: { meterProvider: {}, meter: 1 },
        tracing: { tracerProvider: 'global', queryText: 'yes', sampler: 1 },
      }),
    ).toEqual([
      expect.stringMatching(/^queue\.maxWaiting: /),
      'metrics.meterProvider: must be a MeterProvider (an object with getMeter), got a object',
      'metrics.meter: unknown option (known: meterProvider)',
      "tracing.tracerProvider: must be a TracerProvider (an object with getTracer), got 'global'",
      "tracing.queryText: must be true or false, got 'yes'",
      'tracing.sampler: unknown option (known: tracerProvider, queryText)',
    ]);
  });

  it('refuse anything but a boolean or an object', () => {
    expect(problemsOf({ metrics: 'prometheus', tracing: [] })).toEqual([
      "metrics: must be true, false or an object, got 'prometheus'",
      'tracing: must be true, false or an object, got an array',
    ]);
    expect(problemsOf({ metrics: null, tracing: 1 })).toEqual([
      'metrics: must be true, false or an object, got null',
      'tracing: must be true, false or an object, got 1',
    ]);
  });

  it('are known top-level keys (a misspelling is not)', () => {
    expect(problemsOf({ metric: true })).toEqual([
      expect.stringMatching(/^metric: unknown option \(known: .*metrics, tracing\)$/),
    ]);
  });
});

describe('without @opentelemetry/api', () => {
  afterEach(() => {
    vi.doUnmock('../../src/optional-require.js');
    vi.resetModules();
  });

  /** resolveOptions from a fresh module graph in which @opentelemetry/api cannot be required. */
  async function resolveWithoutApi(): Promise<typeof resolveOptions> {
    vi.resetModules();
    vi.doMock('../../src/optional-require.js', async (original) => {
      const actual = await original<typeof import('../../src/optional-require.js')>();
      return {
        optionalRequire: (id: string) =>
          id === '@opentelemetry/api' ? undefined : actual.optionalRequire(id),
      };
    });
    return (await import('../../src/options/pool.js')).resolveOptions;
  }

  it('says what to install when metrics or tracing use the global provider', async () => {
    const resolve = await resolveWithoutApi();
    let problems: readonly string[] = [];
    try {
      resolve({ primary: new FakePool(), metrics: true, tracing: {} });
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(problems).toEqual([
      'metrics: @opentelemetry/api cannot be loaded; install it (`npm install @opentelemetry/api`) or pass `metrics: { meterProvider }`',
      'tracing: @opentelemetry/api cannot be loaded; install it (`npm install @opentelemetry/api`) or pass `tracing: { tracerProvider }`',
    ]);
  });

  it('takes given providers (spans are then roots: no context API)', async () => {
    const resolve = await resolveWithoutApi();
    const meterProvider = new FakeMeterProvider();
    const tracerProvider = new FakeTracerProvider();
    const resolved = resolve({
      primary: new FakePool(),
      metrics: { meterProvider },
      tracing: { tracerProvider },
    });
    expect(resolved.metrics?.meterProvider).toBe(meterProvider);
    expect(resolved.tracing).toEqual({ tracerProvider, queryText: false, api: null });
  });

  it('is not needed while both are off', async () => {
    const resolve = await resolveWithoutApi();
    expect(resolve({ primary: new FakePool() }).metrics).toBeUndefined();
  });
});
