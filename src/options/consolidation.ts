/**
 * Validation and defaults of the pool-wide `consolidation` option (its types are in
 * consolidation-types.ts). Same walker and wording as every other constructor option: every
 * problem is collected, unknown keys are problems.
 */
import { DEFAULTS } from './defaults.js';
import { checkGroup, describe, isInt, isPlainObject, type Schema } from './schema.js';

const CONSOLIDATION_DEFAULTS: ResolvedConsolidationOptions = DEFAULTS.consolidation;

/** What the pool is handed: internal, not part of the .d.ts. */
export interface ResolvedConsolidationOptions {
  /** Every eligible read consolidates unless it passes `consolidate: false`. */
  enabled: boolean;
  /** Calls that may wait on one execution besides the one that started it. */
  maxWaiters: number;
}

const SETTINGS: Schema = {
  // At least one: a flight nobody may join is consolidation turned off, which `false` says.
  maxWaiters: isInt(1, 1_000_000),
};

/**
 * The resolved option, defaults applied; problems are appended to `problems` (the result is
 * then the defaults and must not be used).
 */
export function resolveConsolidationOptions(
  input: unknown,
  problems: string[],
): ResolvedConsolidationOptions {
  if (input === undefined) return CONSOLIDATION_DEFAULTS;
  if (typeof input === 'boolean') {
    return input ? { ...CONSOLIDATION_DEFAULTS, enabled: true } : CONSOLIDATION_DEFAULTS;
  }
  if (!isPlainObject(input)) {
    problems.push(`consolidation: must be true, false or an object, got ${describe(input)}`);
    return CONSOLIDATION_DEFAULTS;
  }
  const given = checkGroup('consolidation', input, SETTINGS, problems);
  return {
    enabled: true,
    maxWaiters: (given.maxWaiters as number | undefined) ?? CONSOLIDATION_DEFAULTS.maxWaiters,
  };
}
