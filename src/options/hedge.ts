/**
 * Validation and defaults of the pool-wide `hedge` option (its types are in hedge-types.ts). Same
 * walker and wording as every other constructor option: every problem is collected, unknown keys
 * are problems, and so are settings that would be ignored (a floor given with a fixed delay).
 */
import { DEFAULTS } from './defaults.js';
import type { HedgeSettings } from './hedge-types.js';
import {
  type Check,
  checkGroup,
  describe,
  isInt,
  isNumber,
  isPlainObject,
  MAX_TIMER_MS,
  type Schema,
} from './schema.js';

/** The option's defaults (DEFAULTS.hedge), hedging off: what an absent or invalid option gives. */
export const HEDGE_DEFAULTS: Readonly<ResolvedHedgeOptions> = DEFAULTS.hedge;

/** What the pool is handed: internal, not part of the .d.ts. */
export interface ResolvedHedgeOptions {
  /** False: reads are never hedged and the read path is unchanged. */
  enabled: boolean;
  delay: number | 'adaptive';
  quantile: number;
  minDelayMs: number;
  maxDelayMs: number;
  budgetPercent: number;
  budgetMinHedges: number;
  cancelAfterMs: number;
}

const isDelay: Check = (v) =>
  v === 'adaptive' || isInt(0, MAX_TIMER_MS)(v) === undefined
    ? undefined
    : `must be 'adaptive' or an integer from 0 to ${MAX_TIMER_MS}`;

const SETTINGS: Schema = {
  delay: isDelay,
  // Below the median a hedge would go out for most reads; 1 would wait for the slowest ever.
  quantile: isNumber(0.5, 0.999),
  minDelayMs: isInt(0, MAX_TIMER_MS),
  maxDelayMs: isInt(1, MAX_TIMER_MS),
  budgetPercent: isNumber(0, 100),
  budgetMinHedges: isInt(0),
  // Bounded: a loser holds its connection meanwhile, and end() waits for it.
  cancelAfterMs: isInt(0, 60_000),
};

/** Only the adaptive delay reads these; given with a fixed delay they would silently do nothing. */
const ADAPTIVE_ONLY = ['quantile', 'minDelayMs', 'maxDelayMs'] as const;

/**
 * The resolved option, defaults applied; problems are appended to `problems` (the result is
 * then the defaults and must not be used).
 */
export function resolveHedgeOptions(
  input: unknown,
  problems: string[],
): Readonly<ResolvedHedgeOptions> {
  if (input === undefined || input === false) return HEDGE_DEFAULTS;
  if (input === true) return { ...HEDGE_DEFAULTS, enabled: true };
  if (!isPlainObject(input)) {
    problems.push(`hedge: must be true, false or an object, got ${describe(input)}`);
    return HEDGE_DEFAULTS;
  }
  const before = problems.length;
  const given = checkGroup('hedge', input, SETTINGS, problems) as HedgeSettings;
  const d = HEDGE_DEFAULTS;
  const resolved: ResolvedHedgeOptions = {
    enabled: true,
    delay: given.delay ?? d.delay,
    quantile: given.quantile ?? d.quantile,
    minDelayMs: given.minDelayMs ?? d.minDelayMs,
    maxDelayMs: given.maxDelayMs ?? d.maxDelayMs,
    budgetPercent: given.budgetPercent ?? d.budgetPercent,
    budgetMinHedges: given.budgetMinHedges ?? d.budgetMinHedges,
    cancelAfterMs: given.cancelAfterMs ?? d.cancelAfterMs,
  };
  if (resolved.delay !== 'adaptive') {
    const ignored = ADAPTIVE_ONLY.filter((key) => given[key] !== undefined);
    if (ignored.length > 0) {
      problems.push(
        `hedge: ${ignored.join(', ')} apply only to delay: 'adaptive' (delay is ${resolved.delay})`,
      );
    }
  } else if (resolved.minDelayMs > resolved.maxDelayMs) {
    problems.push(
      `hedge.minDelayMs (${resolved.minDelayMs}) must not exceed hedge.maxDelayMs (${resolved.maxDelayMs})`,
    );
  }
  return problems.length > before ? HEDGE_DEFAULTS : resolved;
}
