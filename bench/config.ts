/**
 * Command-line flags and the round plan they select. `--quick` is a smoke check (a few seconds
 * per case, the peer rows included); the default plan takes about four minutes on a 2-core
 * machine, half of it the peer rows of case 6.
 */

export interface BenchPlan {
  quick: boolean;
  json: boolean;
  /** Measured round pairs (raw, wrapped) per real-server case. */
  pgRounds: number;
  /** Length of one measured round against the real server, in ms. */
  pgRoundMs: number;
  /** Length of the warm-up round (per side) that opens every connection, in ms. */
  pgWarmupMs: number;
  /** Round pairs of the in-process overhead case. */
  cpuRounds: number;
  /** Calls per round of the in-process overhead case. */
  cpuCalls: number;
  /** Rounds of the rejection case. */
  rejectRounds: number;
  /** Calls per rejection round. */
  rejectCalls: number;
  /** Longest an in-process round may take before it counts as hung (a call never settled). */
  cpuRoundLimitMs: number;
  /** Measured round pairs (peer, ResilientPool) per peer row of case 6. */
  peerRounds: number;
  /** Length of one measured peer round, in ms. */
  peerRoundMs: number;
  /** Length of the warm-up round (per side) of a peer row, in ms. */
  peerWarmupMs: number;
}

const FULL = {
  pgRounds: 8,
  pgRoundMs: 1_500,
  pgWarmupMs: 1_000,
  cpuRounds: 7,
  cpuCalls: 200_000,
  rejectRounds: 5,
  rejectCalls: 100_000,
  cpuRoundLimitMs: 10_000,
  peerRounds: 8,
  peerRoundMs: 1_500,
  peerWarmupMs: 1_000,
};

const QUICK = {
  pgRounds: 2,
  pgRoundMs: 500,
  pgWarmupMs: 250,
  cpuRounds: 3,
  cpuCalls: 30_000,
  rejectRounds: 3,
  rejectCalls: 20_000,
  cpuRoundLimitMs: 3_000,
  peerRounds: 2,
  peerRoundMs: 400,
  peerWarmupMs: 200,
};

const KNOWN = new Set(['--quick', '--json', '--help', '-h']);

export function parsePlan(argv: readonly string[]): BenchPlan {
  const unknown = argv.filter((a) => !KNOWN.has(a));
  if (unknown.length > 0 || argv.includes('--help') || argv.includes('-h')) {
    if (unknown.length > 0) console.error(`bench: unknown argument(s): ${unknown.join(' ')}`);
    console.error('usage: npm run bench -- [--quick] [--json]');
    process.exit(unknown.length > 0 ? 2 : 0);
  }
  const quick = argv.includes('--quick');
  return { quick, json: argv.includes('--json'), ...(quick ? QUICK : FULL) };
}
