/**
 * Every drill scenario on a real cluster, each asserting the invariants: no acknowledged write
 * lost or doubled, no client leaked, every error surfaced a known failure. Replica faults must
 * surface no error at all: reads move to the other replica.
 */
import { describe, expect, it } from 'vitest';
import { runDrill } from '../../src/cli/drill/run-drill.js';
import { SCENARIOS, type ScenarioName } from '../../src/cli/drill/scenario-names.js';

const REPLICA_FAULTS: ReadonlySet<ScenarioName> = new Set([
  'replica-kill',
  'replica-hang',
  'network-blackhole',
]);

describe.skipIf(process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '')(
  'drill scenarios (need the local cluster; skipped because DATABASE_URL is set)',
  () => {
    it.each(SCENARIOS)(
      '%s keeps every invariant',
      async (name) => {
        const report = await runDrill({
          scenarios: [name],
          durationMs: 10_000,
          seed: 42,
          concurrency: 4,
          rate: 150,
        });
        for (const invariant of report.invariants) {
          expect(invariant, invariant.detail).toMatchObject({ ok: true });
        }
        expect(report.faults.map((f) => f.name)).toEqual([name]);
        const [row] = report.summary;
        expect(row).toBeDefined();
        expect(report.totals.writesAcknowledged).toBeGreaterThan(0);
        if (REPLICA_FAULTS.has(name)) {
          expect(row!.errorsSurfaced, `${name} surfaced errors to callers`).toBe(0);
        } else {
          // The primary was unreachable for a while: the pool noticed and came back.
          expect(row!.timeToDetectMs).not.toBeNull();
        }
        expect(row!.timeToRecoverMs, `${name} never recovered`).not.toBeNull();
      },
      90_000,
    );
  },
);
