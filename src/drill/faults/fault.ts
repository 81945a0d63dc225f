/**
 * What a scenario plans: the fault it injects, how it heals it, and what it tells the drill
 * about it. One file per family of faults in this directory; scenarios.ts picks the plan.
 */
import pg from 'pg';
import type { ClusterNode } from '../../testing/index.js';
import type { OverloadFigures } from '../report-model.js';
import type { ScenarioName } from '../scenario-names.js';
import type { DrillNode } from '../targets.js';

/** What a fault may tell the drill while it is played. */
export interface FaultContext {
  /** A promotion ended: writes can flow to the new primary from now on. */
  markPromoted(): void;
  /**
   * The server the fault takes down is down now (a kill or a stop returned: its processes have
   * exited). Until then, a write that starts may still be sent to it.
   */
  markDown(): void;
  /** A line for the event log (`>> ...`). */
  say(line: string): void;
}

export interface PlannedFault {
  name: ScenarioName;
  /** Node or component hit, e.g. 'replica-1', 'primary', 'redis', 'every node'. */
  target: string;
  /** The pool endpoint whose breaker and calls show the fault ('primary' for the write path). */
  endpoint: string;
  description: string;
  /** The fault is held at least this long, whatever the slot allows (ms). */
  minHoldMs?: number;
  /**
   * A one-off action (a reset, a termination) rather than a state: the pool's recovery starts
   * when the action is done, not at the heal.
   */
  instant?: boolean;
  /** Runs before the fault window opens (the overload measures its unloaded latency). */
  prepare?(): Promise<void>;
  inject(context: FaultContext): Promise<void>;
  /** Undoes the fault; a no-op for a promotion, which is final. */
  heal(context: FaultContext): Promise<void>;
  /**
   * Endpoints that lead to a node gone for good once the fault was played (a promoted replica
   * that a later failover killed): recovery does not wait for their circuits.
   */
  retired?(): string[];
  /** The overload scenario's own figures, once healed. */
  overload?(): Omit<
    OverloadFigures,
    'admitted' | 'refused' | 'failed' | 'admittedP99Ms' | 'refusalP99Ms' | 'errorsByCode'
  >;
}

export function serverOf(node: DrillNode): ClusterNode {
  if (node.server === undefined) {
    throw new Error(`${node.name}: this fault needs the local cluster (not --primary URL)`);
  }
  return node.server;
}

/** Runs `work` on a client of its own, connected straight to a node (bypassing its proxy). */
export async function withClient<T>(
  connection: pg.ClientConfig,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client(connection);
  // A dropped connection surfaces through the awaited calls.
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export const secondsOf = (ms: number): string => `${Math.round(ms / 1000)} s`;
