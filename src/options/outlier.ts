/**
 * Validation of the `outlier`, `slowStart` and `connectPacing` options, with the same walker and
 * wording as every other constructor option, their defaults, and the one period derived from
 * them: how often the pool's sweep runs (the clock that in-flight times are measured with).
 */
import { DEFAULTS } from './defaults.js';
import type { BreakerOptions } from './policy-types.js';
import { checkGroup, isBoolean, isInt, MAX_TIMER_MS, type Schema } from './schema.js';

/** The three options' defaults, from the one DEFAULTS table. */
export const OUTLIER_DEFAULTS = {
  outlier: DEFAULTS.outlier,
  slowStart: DEFAULTS.slowStart,
  connectPacing: DEFAULTS.connectPacing,
};

/** The three options with every default applied. Internal. */
export interface ResolvedRecoveryOptions {
  outlier: { enabled: boolean; slowMs: number; maxEjectionPercent: number };
  slowStart: { windowMs: number; minWeightPercent: number };
  connectPacing: { enabled: boolean };
}

const OUTLIER: Schema = {
  enabled: isBoolean,
  // Below 20 ms the sweep would wake every 5 ms; nothing on a network is that uniform.
  slowMs: isInt(20, MAX_TIMER_MS),
  maxEjectionPercent: isInt(1, 100),
};
const SLOW_START: Schema = {
  windowMs: isInt(0, MAX_TIMER_MS),
  minWeightPercent: isInt(1, 100),
};
const CONNECT_PACING: Schema = { enabled: isBoolean };

/**
 * Checks the three options (each absent is fine) and applies the defaults; each problem is
 * appended to `problems`. `healthEnabled`: outlier ejection learns of silence from the health
 * probes, so asking for it without them is a problem; left at its default it is simply off then.
 */
export function resolveRecoveryOptions(
  input: { outlier?: unknown; slowStart?: unknown; connectPacing?: unknown },
  healthEnabled: boolean,
  problems: string[],
): ResolvedRecoveryOptions {
  const outlier = checkGroup('outlier', input.outlier, OUTLIER, problems);
  const slowStart = checkGroup('slowStart', input.slowStart, SLOW_START, problems);
  const pacing = checkGroup('connectPacing', input.connectPacing, CONNECT_PACING, problems);
  if (outlier.enabled === true && !healthEnabled) {
    problems.push(
      'outlier.enabled: needs the health monitor (health.enabled: true), whose probes confirm that a replica is silent',
    );
  }
  const d = OUTLIER_DEFAULTS;
  return {
    outlier: {
      enabled: ((outlier.enabled as boolean | undefined) ?? d.outlier.enabled) && healthEnabled,
      slowMs: (outlier.slowMs as number | undefined) ?? d.outlier.slowMs,
      maxEjectionPercent:
        (outlier.maxEjectionPercent as number | undefined) ?? d.outlier.maxEjectionPercent,
    },
    slowStart: {
      windowMs: (slowStart.windowMs as number | undefined) ?? d.slowStart.windowMs,
      minWeightPercent:
        (slowStart.minWeightPercent as number | undefined) ?? d.slowStart.minWeightPercent,
    },
    connectPacing: {
      enabled: (pacing.enabled as boolean | undefined) ?? d.connectPacing.enabled,
    },
  };
}

/** Slow start's ramp moves in this many steps at most: finer would be unnoticeable. */
const RAMP_STEPS = 20;

/**
 * How often (ms) the pool's sweep runs, or undefined when nothing needs it. The sweep advances
 * every endpoint's generation (the clock statements are stamped with when sent), so it must tick
 * finely enough for the finest threshold measured with it: a quarter of `outlier.slowMs`, half
 * of `breaker.slowCallMs`, a twentieth of the slow-start window.
 */
export function sweepIntervalMs(
  breaker: Required<Pick<BreakerOptions, 'enabled' | 'slowCallMs'>>,
  recovery: ResolvedRecoveryOptions,
): number | undefined {
  let ms = Number.POSITIVE_INFINITY;
  if (breaker.enabled && breaker.slowCallMs > 0) ms = Math.min(ms, breaker.slowCallMs / 2);
  if (recovery.outlier.enabled) ms = Math.min(ms, recovery.outlier.slowMs / 4);
  if (recovery.slowStart.windowMs > 0) {
    ms = Math.min(ms, recovery.slowStart.windowMs / RAMP_STEPS);
  }
  return ms === Number.POSITIVE_INFINITY ? undefined : Math.max(1, Math.floor(ms));
}

/**
 * Sweeps that must pass before something stamped with the generation has certainly been in
 * flight `ms`: stamped between two sweeps, it has been out more than `n - 1` periods at the n-th
 * sweep after, so it is noticed between `ms` and `ms` plus two periods after it was sent (plus
 * one when `ms` is a multiple of the period). A sweep that runs late (a busy event loop) only
 * makes the measure longer, never shorter.
 */
export function generationsFor(ms: number, sweepMs: number): number {
  return Math.ceil(ms / sweepMs) + 1;
}
