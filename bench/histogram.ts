/**
 * Micro-bench behind issue 10's choice of a latency histogram: what one record() costs per query
 * and what one stats() summary costs, for LatencyWindow against hdr-histogram-js and against
 * keeping raw samples in arrays. Standalone (not part of bench/run.ts):
 *
 *   npx tsx bench/histogram.ts
 *
 * hdr-histogram-js is not a dependency; to include it, install it outside the project
 * (`mkdir -p /tmp/hdr && cd /tmp/hdr && npm init -y && npm i hdr-histogram-js`) or point
 * HDR_HISTOGRAM_JS at its dist/index.js. Without it, its lines are skipped with a note.
 *
 * Subjects run in alternating rounds and each figure is the median over rounds, because the
 * machines are noisy; the empty loop's cost is printed so it can be subtracted by eye.
 */
import { LATENCY_BUCKETS, LatencyWindow } from '../src/telemetry/latency-window.js';

const HDR_PATH =
  process.env.HDR_HISTOGRAM_JS ?? '/tmp/hdr/node_modules/hdr-histogram-js/dist/index.js';
const OPS = 2_000_000;
const ROUNDS = 9;
const SLOTS = 6;
/** Samples per slot in the summary bench: 60k queries in the window, ~1k/s over 60 s. */
const PER_SLOT = 10_000;
/** The top of LatencyWindow's range, in µs, given to hdr so both clamp alike. */
const HIGHEST_US = 2 ** 30;

/** The parts of hdr-histogram-js used here (its types are not installed in the project). */
interface HdrHistogram {
  recordValue(value: number): void;
  getValueAtPercentile(percentile: number): number;
  add(other: HdrHistogram): void;
  reset(): void;
  readonly maxValue: number;
  readonly estimatedFootprintInBytes: number;
}
interface HdrModule {
  build(request?: Record<string, unknown>): HdrHistogram;
  initWebAssemblySync?(): void;
}

async function loadHdr(): Promise<HdrModule | undefined> {
  try {
    const mod = await import(HDR_PATH);
    return (mod.default ?? mod) as HdrModule;
  } catch (error) {
    console.log(
      `hdr-histogram-js not loaded from ${HDR_PATH} (${(error as Error).message}); skipped`,
    );
    return undefined;
  }
}

/** Deterministic PRNG (mulberry32), so every run records the same durations. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Log-normal query latencies around 2 ms with a long tail, as performance.now() floats. */
function latencies(count: number): Float64Array {
  const next = random(7);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const normal = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    out[i] = Math.exp(Math.log(2) + normal);
  }
  return out;
}

const INPUT = latencies(1 << 16);
const MASK = INPUT.length - 1;

/** One timed run of `OPS` operations; returns ns per operation. */
type Run = () => number;

function timed(body: () => void): number {
  const start = process.hrtime.bigint();
  body();
  return Number(process.hrtime.bigint() - start) / OPS;
}

// One loop per subject, so each call site stays monomorphic.
function emptyLoop(): Run {
  return () =>
    timed(() => {
      // A local sum: a captured one would be boxed on every store and time the allocator.
      let sum = 0;
      for (let i = 0; i < OPS; i++) sum += INPUT[i & MASK]!;
      if (sum === -1) console.log(sum);
    });
}

function windowRecord(): Run {
  const window = new LatencyWindow(SLOTS);
  return () =>
    timed(() => {
      for (let i = 0; i < OPS; i++) window.record(INPUT[i & MASK]!);
      window.rotate();
    });
}

function hdrRecord(histogram: HdrHistogram): Run {
  return () =>
    timed(() => {
      // hdr takes integers: the µs conversion is part of what a caller would pay.
      for (let i = 0; i < OPS; i++) histogram.recordValue(Math.round(INPUT[i & MASK]! * 1000));
      histogram.reset();
    });
}

function arrayPush(): Run {
  let slot: number[] = [];
  return () =>
    timed(() => {
      for (let i = 0; i < OPS; i++) {
        slot.push(INPUT[i & MASK]!);
        // A rotation every PER_SLOT samples, as a rolling window of raw samples would do.
        if (slot.length === PER_SLOT) slot = [];
      }
    });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

function runAll(subjects: ReadonlyArray<[string, Run]>): Map<string, number> {
  for (const [, run] of subjects) run(); // warm-up, untimed: lets the JIT settle
  const samples = new Map<string, number[]>(subjects.map(([name]) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of subjects) samples.get(name)!.push(run());
  }
  return new Map([...samples].map(([name, ns]) => [name, median(ns)]));
}

/** µs per call of `body`, median over rounds of `calls` calls. */
function microsPerCall(body: () => unknown, calls = 200): number {
  for (let i = 0; i < calls; i++) body();
  const rounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) body();
    rounds.push(Number(process.hrtime.bigint() - start) / calls / 1000);
  }
  return median(rounds);
}

function exactQuantile(sorted: Float64Array, q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

async function main(): Promise<void> {
  const hdr = await loadHdr();
  console.log(
    `node ${process.version}; ${OPS.toLocaleString('en-US')} records a run, median of ${ROUNDS} rounds\n`,
  );

  const tunedRequest = {
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    // One significant digit: 16 sub-buckets per power of two, LatencyWindow's resolution.
    numberOfSignificantValueDigits: 1,
    autoResize: false,
  };
  const subjects: Array<[string, Run]> = [
    ['empty loop (reads the input)', emptyLoop()],
    ['LatencyWindow.record', windowRecord()],
    ['array push (raw samples)', arrayPush()],
  ];
  if (hdr) {
    subjects.push(['hdr Int32, 1 digit, fixed range', hdrRecord(hdr.build(tunedRequest))]);
    subjects.push(['hdr build() defaults (3 digits)', hdrRecord(hdr.build())]);
    try {
      hdr.initWebAssemblySync?.();
      subjects.push([
        'hdr WebAssembly, 1 digit',
        hdrRecord(hdr.build({ ...tunedRequest, useWebAssembly: true })),
      ]);
    } catch (error) {
      console.log(`hdr WebAssembly unavailable (${(error as Error).message}); skipped`);
    }
  }
  console.log('record(), ns per call');
  for (const [name, ns] of runAll(subjects))
    console.log(`  ${name.padEnd(34)} ${ns.toFixed(1).padStart(7)}`);

  // A full window: SLOTS slots of PER_SLOT samples, summarised as stats() would (p50/p90/p99/max).
  const total = SLOTS * PER_SLOT;
  const window = new LatencyWindow(SLOTS);
  const rawSlots: number[][] = [];
  const hdrSlots = hdr ? Array.from({ length: SLOTS }, () => hdr.build(tunedRequest)) : [];
  for (let s = 0; s < SLOTS; s++) {
    const raw: number[] = [];
    for (let i = 0; i < PER_SLOT; i++) {
      const ms = INPUT[(s * PER_SLOT + i) & MASK]!;
      window.record(ms);
      raw.push(ms);
      hdrSlots[s]?.recordValue(Math.round(ms * 1000));
    }
    rawSlots.push(raw);
    if (s < SLOTS - 1) window.rotate();
  }
  const quantiles = [0.5, 0.9, 0.99];
  const sortRaw = () => Float64Array.from(rawSlots.flat()).sort();
  console.log(
    `\nsummary() over ${SLOTS} slots, ${total.toLocaleString('en-US')} samples, µs per call`,
  );
  console.log(
    `  ${'LatencyWindow.summary'.padEnd(34)} ${microsPerCall(() => window.summary())
      .toFixed(1)
      .padStart(7)}`,
  );
  console.log(
    `  ${'arrays: concat + sort + ranks'.padEnd(34)} ${microsPerCall(() => {
      const sorted = sortRaw();
      return quantiles.map((q) => exactQuantile(sorted, q));
    }, 20)
      .toFixed(1)
      .padStart(7)}`,
  );
  if (hdr) {
    const merged = hdr.build(tunedRequest);
    const hdrSummary = () => {
      merged.reset();
      for (const h of hdrSlots) merged.add(h);
      return [...quantiles.map((q) => merged.getValueAtPercentile(q * 100)), merged.maxValue];
    };
    console.log(
      `  ${'hdr: reset + add x6 + 3 percentiles'.padEnd(34)} ${microsPerCall(hdrSummary).toFixed(1).padStart(7)}`,
    );
    console.log(
      `\nmemory per endpoint: LatencyWindow ${SLOTS} x ${LATENCY_BUCKETS * Uint32Array.BYTES_PER_ELEMENT} B; ` +
        `hdr 1 digit ${SLOTS} x ${hdrSlots[0]!.estimatedFootprintInBytes} B; raw arrays ~${total * 8} B`,
    );
    const sorted = sortRaw();
    console.log('\naccuracy on this data, ms (exact nearest rank / LatencyWindow / hdr 1 digit):');
    hdrSummary();
    for (const q of [...quantiles, 0.999]) {
      const exact = exactQuantile(sorted, q);
      const ours = window.quantile(q)!;
      const theirs = merged.getValueAtPercentile(q * 100) / 1000;
      const pct = (v: number) => `${(((v - exact) / exact) * 100).toFixed(2)}%`;
      console.log(
        `  p${q * 100}`.padEnd(8) +
          `${exact.toFixed(3)} / ${ours.toFixed(3)} (${pct(ours)}) / ${theirs.toFixed(3)} (${pct(theirs)})`,
      );
    }
  }
}

await main();
