/**
 * Validation of the `failover` option (failover buffering), with the same walker and wording as
 * every other constructor option, and its defaults. The default of `bufferMs` depends on the
 * pool's shape: on with primary candidates, off with a single primary (see failover-types.ts).
 */
import { DEFAULTS } from './defaults.js';
import type { FailoverOptions } from './failover-types.js';
import { checkGroup, isInt, MAX_TIMER_MS, type Schema } from './schema.js';

const FAILOVER_DEFAULTS = DEFAULTS.failover;

/** The `failover` option with every default applied. Internal. */
export interface ResolvedFailoverOptions {
  /** 0: buffering is off. */
  bufferMs: number;
  maxBuffered: number;
}

const FAILOVER: Schema = {
  bufferMs: isInt(0, MAX_TIMER_MS),
  maxBuffered: isInt(1, 1_000_000),
};

/**
 * Checks `failover` (absent is fine) and applies the defaults; each problem is appended to
 * `problems`. `hasCandidates`: the pool was given a list of primary candidates.
 */
export function resolveFailoverOptions(
  input: unknown,
  hasCandidates: boolean,
  problems: string[],
): ResolvedFailoverOptions {
  const given = checkGroup('failover', input, FAILOVER, problems) as FailoverOptions;
  return {
    bufferMs:
      given.bufferMs ??
      (hasCandidates ? FAILOVER_DEFAULTS.bufferMs : FAILOVER_DEFAULTS.singlePrimaryBufferMs),
    maxBuffered: given.maxBuffered ?? FAILOVER_DEFAULTS.maxBuffered,
  };
}
