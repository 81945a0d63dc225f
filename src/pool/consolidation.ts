/**
 * Query consolidation (Vitess's consolidator, in process): while a read is executing, an
 * identical read joins it and gets its answer instead of sending the statement again. It is the
 * cache's single-flight without a cache: nothing outlives the execution, so a read that starts
 * after the answer arrived runs again.
 *
 * - Key: the endpoint class, the statement as pg sends it (text, parameters through pg's own
 *   prepareValue, rowMode, binary, name, queryMode) and the `types` object by identity (custom
 *   parsers change the rows, and two type objects cannot be compared), plus `idempotent` (it
 *   changes what the shared execution may retry). A QueryConfig with any other key (`rows`,
 *   `portal`, `callback`) is not consolidated, nor are parameters pg would refuse: such a call
 *   must fail, or run, exactly as pg runs it.
 * - Every caller waits on its own terms: its signal or timeout ends its wait at once; the
 *   execution is cancelled (on the server, through the signal it was given) only when no caller
 *   is waiting on it any more, with the last leaver's reason. A failure of the execution reaches
 *   every caller still waiting.
 * - A cap on waiters per execution: a call that finds it full starts an execution of its own,
 *   which replaces the full one as the one later calls join.
 * - Every caller gets its own result object and rows: the first caller still waiting gets pg's
 *   own result, the others each a copy of the result object, of its `rows` array and of each
 *   row (`{ ...row }`, or `row.slice()` with rowMode 'array'), all made before any caller runs,
 *   so that a caller sorting, filtering or editing its rows never changes another's. Column
 *   values are not copied (a json column's object, a Date, a Buffer): a deep copy would cost
 *   more than the statement saved, and structuredClone would turn Buffers into Uint8Arrays.
 *   The `fields` array and an error are shared too.
 *
 * Keys are held only while their execution is in flight and never leave this module: stats()
 * counts, it never names. A key longer than {@link MAX_PLAIN_KEY} (a large bytea parameter) is
 * held as its sha256 instead.
 */
import { createHash } from 'node:crypto';
import { paramsKeyPart, statementParts } from '../cache/keys.js';
import { abortError, TimeoutError } from '../errors.js';
import type { QueryConfigLike, QueryResultLike } from '../pg-like.js';

/**
 * Which endpoints a read may be answered by: 'replica' for reads the router places (a replica,
 * or the primary as fallback), 'primary' for reads sent to the primary. Reads of different
 * classes never share an execution: they promise different freshness.
 */
export type EndpointClass = 'replica' | 'primary';

/** What stats() shows of consolidation. */
export interface ConsolidationStats {
  /** Reads that joined an execution another read had started (executions saved). */
  consolidated: number;
  /** Reads that found an identical execution already at `maxWaiters` and started their own. */
  overCap: number;
  /** Executions in flight that identical reads may join now. */
  inFlight: number;
}

/** Keys longer than this are hashed: a flight must not pin a megabyte of parameter text. */
export const MAX_PLAIN_KEY = 4_096;

/** The QueryConfig keys that the key covers; a config with any other is not consolidated. */
const KEYED_CONFIG = new Set(['text', 'values', 'name', 'rowMode', 'types', 'binary', 'queryMode']);

/** `types` objects by identity: the same object parses alike, two objects may not. */
const typesIds = new WeakMap<object, number>();
let nextTypesId = 1;

function typesPart(types: unknown): string | undefined {
  if (types === undefined || types === null) return '';
  if (typeof types !== 'object' && typeof types !== 'function') return undefined;
  let id = typesIds.get(types);
  if (id === undefined) {
    id = nextTypesId++;
    typesIds.set(types, id);
  }
  return String(id);
}

/** `value` as a length-prefixed key part ('' for undefined); undefined when not a string. */
function optionalString(value: unknown): string | undefined {
  if (value === undefined) return '';
  return typeof value === 'string' ? `${value.length}:${value}` : undefined;
}

/**
 * The consolidation key of a read, or undefined when it must not be consolidated (its call must
 * reach pg as it is: a QueryConfig with keys the key does not cover, no text, or parameters pg
 * cannot serialise). Every variable part is length-prefixed or self-delimiting, so two different
 * calls never produce one key.
 */
export function consolidationKey(
  endpointClass: EndpointClass,
  text: string | QueryConfigLike,
  values: readonly unknown[] | undefined,
  idempotent: boolean,
): string | undefined {
  // A text alone and a QueryConfig of that text alone are one call to pg: one key.
  let config = '\u0000\u0000';
  if (typeof text !== 'string') {
    if (typeof text !== 'object' || text === null) return undefined;
    for (const key in text) {
      if (!KEYED_CONFIG.has(key)) return undefined;
    }
    const o = text as QueryConfigLike & { queryMode?: unknown };
    const types = typesPart(o.types);
    const name = optionalString(o.name);
    const mode = optionalString(o.queryMode);
    if (types === undefined || name === undefined || mode === undefined) return undefined;
    config = `${types}\u0000${name}\u0000${mode}`;
  }
  const { sql, values: params, rowMode } = statementParts(text, values);
  if (typeof sql !== 'string') return undefined;
  const paramsPart = paramsKeyPart(params);
  if (paramsPart === undefined) return undefined;
  const key =
    `${endpointClass}\u0000${idempotent ? 'i' : ''}\u0000${rowMode}\u0000${config}\u0000` +
    `${sql.length}:${sql}\u0000${params?.length ?? 0}:${paramsPart}`;
  return key.length <= MAX_PLAIN_KEY
    ? key
    : `#${createHash('sha256').update(key).digest('base64url')}`;
}

/** One caller waiting on a flight. */
interface Waiter {
  resolve(result: QueryResultLike): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  /** Listens on `signal`. */
  onAbort: (() => void) | undefined;
  /** The caller's timeout. */
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Left (signal or timeout) or answered: never settled twice, never counted twice. */
  done: boolean;
}

/** One execution and the callers waiting on it. */
interface Flight {
  readonly key: string;
  readonly waiters: Waiter[];
  /** Callers still waiting: the cap counts these, and 0 cancels the execution. */
  waiting: number;
  /**
   * Cancels the execution. Absent when the call that started it has neither signal nor timeout:
   * that call never leaves, so the execution is never abandoned (and an AbortSignal, about 5 µs
   * to create on Node 20, is saved).
   */
  readonly controller: AbortController | undefined;
}

/** Runs the statement; `signal` (absent when nobody can leave) aborts when every caller has left. */
export type Execute = (signal: AbortSignal | undefined) => Promise<QueryResultLike>;

export class Consolidator {
  private readonly flights = new Map<string, Flight>();
  private consolidated = 0;
  private overCap = 0;

  /** @param maxWaiters Callers that may wait on one execution besides the one that started it. */
  constructor(private readonly maxWaiters: number) {}

  /**
   * The answer of the execution in flight for `key`, or of one started now with `execute`.
   * Rejects with AbortedError as soon as `signal` fires, with TimeoutError (E_TIMEOUT) once
   * `timeoutMs` has passed, and with the execution's error when it fails. The caller's own
   * deadline is a timer and a listener here, not an AbortController: only the execution needs
   * a signal, and only one per execution.
   */
  run(
    key: string,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    execute: Execute,
  ): Promise<QueryResultLike> {
    if (signal?.aborted) return Promise.reject(abortError(undefined, signal));
    const flight = this.flights.get(key);
    if (flight !== undefined) {
      if (flight.waiting <= this.maxWaiters) {
        this.consolidated++;
        return this.wait(flight, signal, timeoutMs);
      }
      this.overCap++;
    }
    return this.start(key, signal, timeoutMs, execute);
  }

  stats(): ConsolidationStats {
    return { consolidated: this.consolidated, overCap: this.overCap, inFlight: this.flights.size };
  }

  private start(
    key: string,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    execute: Execute,
  ): Promise<QueryResultLike> {
    const leaves = signal !== undefined || timeoutMs !== undefined;
    const controller = leaves ? new AbortController() : undefined;
    // A starter that cannot leave is counted as waiting but holds no Waiter: it is answered by
    // the execution's own promise (one `.then`, no promise of its own), with pg's own result.
    const flight: Flight = { key, waiters: [], waiting: leaves ? 0 : 1, controller };
    // Replaces a full flight, which goes on for its own waiters.
    this.flights.set(key, flight);
    const answer = leaves ? this.wait(flight, signal, timeoutMs) : undefined;
    let execution: Promise<QueryResultLike>;
    try {
      execution = execute(controller?.signal);
    } catch (err) {
      execution = Promise.reject(err);
    }
    const settled = execution.then(
      (result) => {
        this.settle(flight, result, undefined, false, answer === undefined);
        return result;
      },
      (err: unknown) => {
        this.settle(flight, undefined, err, true, answer === undefined);
        throw err;
      },
    );
    if (answer === undefined) return settled;
    // The starter's answer comes through its Waiter; this chain only settles the flight.
    settled.catch(ignore);
    return answer;
  }

  private wait(
    flight: Flight,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ): Promise<QueryResultLike> {
    return new Promise<QueryResultLike>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: undefined,
        timer: undefined,
        done: false,
      };
      flight.waiters.push(waiter);
      flight.waiting++;
      if (signal !== undefined) {
        const onAbort = () =>
          this.leave(flight, waiter, abortError(undefined, signal), signal.reason);
        waiter.onAbort = onAbort;
        // Without `once`: removed by hand either way, and `once` costs about 1 µs more.
        signal.addEventListener('abort', onAbort);
      }
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          const timeout = new TimeoutError(timeoutMs);
          this.leave(flight, waiter, timeout, timeout);
        }, timeoutMs);
      }
    });
  }

  /**
   * A caller's signal fired or its timeout passed: it stops waiting with `err`; the last one out
   * cancels the execution with `reason` (the endpoint then cancels it on the server).
   */
  private leave(flight: Flight, waiter: Waiter, err: unknown, reason: unknown): void {
    if (waiter.done) return;
    waiter.done = true;
    detach(waiter);
    flight.waiting--;
    waiter.reject(err);
    if (flight.waiting > 0) return;
    // Nobody is waiting: a later identical read must not join an execution being cancelled.
    this.forget(flight);
    flight.controller?.abort(reason);
  }

  /**
   * The execution answered: every caller still waiting gets it, each its own copy (`taken`: the
   * starter has pg's own result already, so every waiter gets a copy).
   */
  private settle(
    flight: Flight,
    result: unknown,
    err: unknown,
    failed: boolean,
    taken: boolean,
  ): void {
    this.forget(flight);
    let first = !taken;
    for (const waiter of flight.waiters) {
      if (waiter.done) continue;
      waiter.done = true;
      detach(waiter);
      flight.waiting--;
      if (failed) {
        waiter.reject(err);
      } else {
        // Copies are made here, before any caller's code runs: the original may be changed by
        // its caller as soon as that caller resumes.
        waiter.resolve((first ? result : copyResult(result)) as QueryResultLike);
        first = false;
      }
    }
  }

  private forget(flight: Flight): void {
    if (this.flights.get(flight.key) === flight) this.flights.delete(flight.key);
  }
}

const ignore = () => {};

/** Stops listening to a waiter's signal and timer. */
function detach(waiter: Waiter): void {
  if (waiter.onAbort !== undefined) {
    (waiter.signal as AbortSignal).removeEventListener('abort', waiter.onAbort);
  }
  if (waiter.timer !== undefined) clearTimeout(waiter.timer);
}

/**
 * A caller's own copy of a result: the result object (same prototype, so a pg.Result stays one),
 * its `rows` array and each row; column values are shared. An array of results (a multi-statement
 * text) is copied result by result; anything else is returned as it is.
 */
export function copyResult(result: unknown): unknown {
  if (Array.isArray(result)) return result.map(copyResult);
  if (typeof result !== 'object' || result === null) return result;
  const copy = Object.assign(Object.create(Object.getPrototypeOf(result)), result) as {
    rows?: unknown;
  };
  const rows = (result as { rows?: unknown }).rows;
  if (Array.isArray(rows)) copy.rows = rows.map(copyRow);
  return copy;
}

function copyRow(row: unknown): unknown {
  if (Array.isArray(row)) return row.slice();
  if (typeof row !== 'object' || row === null) return row;
  // pg's rows are plain objects; a pool-like's rows of a class keep their class.
  const proto = Object.getPrototypeOf(row);
  return proto === Object.prototype ? { ...row } : Object.assign(Object.create(proto), row);
}
