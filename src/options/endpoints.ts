/**
 * Validation of the pools ResilientPool wraps: `primary` (one pool, or a list of candidates the
 * pool finds the writable one among) and `replicas`, each a bare pool or `{ pool, name, ... }`.
 * Names are checked for uniqueness because they key stats, events, errors and failovers.
 */
import type { PgPoolLike } from '../pg-like.js';
import { DEFAULTS } from './defaults.js';
import type { ResolvedEndpointConfig } from './resolved.js';
import {
  checkValue,
  describe,
  hasMethods,
  isInt,
  isPlainObject,
  OPTION_WORDING,
  type Schema,
  walk,
} from './schema.js';

export interface ResolvedEndpoints {
  primary: ResolvedEndpointConfig | undefined;
  primaryCandidates: ResolvedEndpointConfig[] | undefined;
  replicas: ResolvedEndpointConfig[];
}

// Every key is checked below, in a fixed order; the schema only rejects the unknown ones.
const ENDPOINT: Schema = { pool: null, name: null, weight: null, maxConcurrent: null };
const isPositiveInt = isInt(1);

const isPoolLike = (v: unknown): v is PgPoolLike => hasMethods(v, ['connect', 'end', 'on']);

function resolveEndpoint(
  path: string,
  value: unknown,
  defaultName: string,
  problems: string[],
): ResolvedEndpointConfig | undefined {
  let config: Record<string, unknown>;
  if (isPoolLike(value) && !('pool' in value)) {
    config = { pool: value };
  } else if (isPlainObject(value)) {
    config = value;
    walk(value, ENDPOINT, path, problems, OPTION_WORDING);
  } else {
    problems.push(`${path}: must be a pg.Pool or { pool, name?, weight?, maxConcurrent? }`);
    return undefined;
  }
  const { pool, name, weight, maxConcurrent } = config;
  if (!isPoolLike(pool)) {
    problems.push(`${path}.pool: must be a pg.Pool-like object with connect(), end() and on()`);
  }
  if (name !== undefined && (typeof name !== 'string' || name.length === 0)) {
    problems.push(`${path}.name: must be a non-empty string, got ${describe(name)}`);
  }
  checkValue(`${path}.weight`, weight, isPositiveInt, problems);
  checkValue(`${path}.maxConcurrent`, maxConcurrent, isPositiveInt, problems);
  if (!isPoolLike(pool)) return undefined;
  // Keep the endpoint's permits at the pool's size so pg's own unbounded queue stays empty.
  const poolMax = pool.options?.max;
  return {
    pool,
    name: typeof name === 'string' && name.length > 0 ? name : defaultName,
    weight: (weight as number | undefined) ?? DEFAULTS.endpoint.weight,
    maxConcurrent:
      (maxConcurrent as number | undefined) ??
      (typeof poolMax === 'number' && poolMax > 0 ? poolMax : DEFAULTS.endpoint.maxConcurrent),
  };
}

function resolvePrimary(
  value: unknown,
  problems: string[],
): Pick<ResolvedEndpoints, 'primary' | 'primaryCandidates'> {
  if (value === undefined) {
    problems.push('primary: is required');
    return { primary: undefined, primaryCandidates: undefined };
  }
  if (!Array.isArray(value)) {
    return {
      primary: resolveEndpoint('primary', value, 'primary', problems),
      primaryCandidates: undefined,
    };
  }
  if (value.length === 0) problems.push('primary: a list of candidates must not be empty');
  const primaryCandidates: ResolvedEndpointConfig[] = [];
  value.forEach((c, i) => {
    const resolved = resolveEndpoint(`primary[${i}]`, c, `primary-${i + 1}`, problems);
    if (resolved) primaryCandidates.push(resolved);
  });
  const first = primaryCandidates[0];
  // The endpoint keeps its name; the candidate it forwards to is set by ResilientPool.
  return { primary: first && { ...first, name: 'primary' }, primaryCandidates };
}

function resolveReplicas(value: unknown, problems: string[]): ResolvedEndpointConfig[] {
  const replicas: ResolvedEndpointConfig[] = [];
  if (value === undefined) return replicas;
  if (!Array.isArray(value)) {
    problems.push('replicas: must be an array');
    return replicas;
  }
  value.forEach((r, i) => {
    const resolved = resolveEndpoint(`replicas[${i}]`, r, `replica-${i + 1}`, problems);
    if (resolved) replicas.push(resolved);
  });
  return replicas;
}

/**
 * Endpoint names must be unique: they key stats, events, errors and the failover event's
 * `from`/`to`. The primary endpoint keeps the name 'primary' and may share it with the candidate
 * it stands for; a replica may not take a candidate's name (generated ones included).
 */
function duplicateNames({ primary, primaryCandidates, replicas }: ResolvedEndpoints): string[] {
  const problems: string[] = [];
  const candidates = primaryCandidates ?? [];
  const repeated = (names: readonly string[]) => names.filter((n, i) => names.indexOf(n) !== i);
  for (const name of new Set(repeated(candidates.map((c) => c.name)))) {
    problems.push(`endpoint names must be unique: primary candidate "${name}" repeats`);
  }
  const taken = new Set([...(primary ? [primary.name] : []), ...candidates.map((c) => c.name)]);
  const replicaNames = replicas.map((r) => r.name);
  for (const name of new Set([
    ...repeated(replicaNames),
    ...replicaNames.filter((n) => taken.has(n)),
  ])) {
    problems.push(`endpoint names must be unique: "${name}" repeats`);
  }
  return problems;
}

/** Validates `primary` and `replicas`, appending one message per problem to `problems`. */
export function resolveEndpoints(
  primaryInput: unknown,
  replicasInput: unknown,
  problems: string[],
): ResolvedEndpoints {
  const endpoints = {
    ...resolvePrimary(primaryInput, problems),
    replicas: resolveReplicas(replicasInput, problems),
  };
  problems.push(...duplicateNames(endpoints));
  const { primary, primaryCandidates, replicas } = endpoints;
  const pools = [...(primaryCandidates ?? (primary ? [primary] : [])), ...replicas].map(
    (e) => e.pool,
  );
  if (new Set(pools).size !== pools.length)
    problems.push('the same pool object is given for two endpoints');
  return endpoints;
}
