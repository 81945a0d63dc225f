/**
 * Overload at twice capacity: the read endpoints' pool slots times the unloaded rate of a
 * fixed-cost read is what they can serve; an open-loop burst offers twice that for the hold.
 */
import type { ResilientPool } from '../../index.js';
import { percentile } from '../calls.js';
import { OverloadBurst, unloadedLatencies } from '../overload.js';
import type { DrillTargets } from '../targets.js';
import type { CallSink } from '../workload.js';
import type { PlannedFault } from './fault.js';

/** Overload calls made one at a time before the burst, for the unloaded latency. */
const UNLOADED_CALLS = 30;

/** Pool slots of the endpoints that serve reads now (replicas not down; else the primary). */
function readPermits(db: ResilientPool, poolMax: number): number {
  const replicas = db.stats().endpoints.filter((e) => e.role === 'replica' && !e.down);
  return Math.max(1, replicas.length) * poolMax;
}

export function overload(targets: DrillTargets, sink: CallSink, holdMs: number) {
  const { db, poolMax } = targets;
  let permits = 0;
  let unloaded: number[] = [];
  let capacityPerSec = 0;
  let burst: OverloadBurst | undefined;
  return {
    name: 'overload',
    target: 'read endpoints',
    // Not one endpoint: detection is the first refusal.
    endpoint: 'replicas',
    description: `open-loop reads (pg_sleep 20 ms) at twice the read endpoints' capacity for ${Math.round(holdMs / 1000)} s`,
    prepare: async () => {
      permits = readPermits(db, poolMax);
      unloaded = await unloadedLatencies(db, UNLOADED_CALLS);
      const p50 = percentile(unloaded, 50) ?? 25;
      capacityPerSec = Math.round((permits * 1000) / p50);
    },
    inject: async (context) => {
      burst = new OverloadBurst(db, {
        ratePerSec: 2 * capacityPerSec,
        // Everything the endpoints can hold (slots and queues) twice over: past that, arrivals
        // are counted, not sent, so the drill itself stays bounded.
        maxOutstanding:
          2 * (permits + targets.queue.maxWaiting * Math.max(1, targets.replicas.length)),
        sink,
      });
      burst.start();
      context.say(
        `overload: ${2 * capacityPerSec} reads/s offered (capacity ${capacityPerSec}/s: ${permits} slots)`,
      );
    },
    heal: async () => {
      await burst?.stop();
    },
    overload: () => ({
      permits,
      unloadedP99Ms: percentile(unloaded, 99),
      capacityPerSec,
      offeredPerSec: 2 * capacityPerSec,
      notSent: burst?.notSent ?? 0,
    }),
  } satisfies PlannedFault;
}
