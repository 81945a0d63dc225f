import { afterEach, describe, expect, it, vi } from 'vitest';
import type {
  Balancer,
  BalancerKind,
  BalancerTarget,
} from '../../src/routing/balancers/balancer.js';
import { createBalancer } from '../../src/routing/balancers/create-balancer.js';

class FakeTarget implements BalancerTarget {
  current = 0;
  share: number | undefined;
  constructor(
    readonly name: string,
    readonly weight = 1,
  ) {}
  load(): number {
    return this.current;
  }
}

/**
 * One phase of a scenario: the state the targets are in, then the names `picks` must produce, in
 * order, with '-' for undefined. State (down, excluded, loads) applies only to its own phase;
 * the balancer's own state carries over from phase to phase.
 */
interface Phase {
  picks: string;
  down?: string;
  exclude?: string;
  loads?: Readonly<Record<string, number>>;
  /** Slow-start shares; a target not named has none (as outside a ramp). */
  shares?: Readonly<Record<string, number>>;
}

interface Scenario {
  name: string;
  kind: BalancerKind;
  /** `name` or `name:weight`, space-separated. */
  targets: string;
  phases: readonly Phase[];
  random?: readonly number[];
}

const scenarios: readonly Scenario[] = [
  // round-robin
  {
    name: 'cycles in order',
    kind: 'round-robin',
    targets: 'a b c',
    phases: [{ picks: 'a b c a b c a' }],
  },
  {
    name: 'steps over a target that is down and resumes its turn when it is back',
    kind: 'round-robin',
    targets: 'a b c',
    phases: [{ picks: 'a b' }, { down: 'b', picks: 'c a c a' }, { picks: 'b c a b' }],
  },
  {
    name: 'skips excluded targets',
    kind: 'round-robin',
    targets: 'a b c',
    phases: [{ exclude: 'a', picks: 'b c b c' }, { picks: 'a b c' }],
  },
  {
    name: 'down and excluded together',
    kind: 'round-robin',
    targets: 'a b c',
    phases: [
      { down: 'a', exclude: 'b', picks: 'c c' },
      { down: 'a c', exclude: 'b', picks: '- -' },
    ],
  },
  {
    name: 'all down',
    kind: 'round-robin',
    targets: 'a b',
    phases: [{ down: 'a b', picks: '- -' }],
  },
  { name: 'no targets', kind: 'round-robin', targets: '', phases: [{ picks: '- -' }] },
  { name: 'one target', kind: 'round-robin', targets: 'a', phases: [{ picks: 'a a a' }] },

  // random: one draw per pick, floor(r * usable) indexes the usable targets in list order
  {
    name: 'indexes the usable targets with the injected source',
    kind: 'random',
    targets: 'a b c',
    random: [0, 0.5, 0.99, 0.34],
    phases: [{ picks: 'a b c b' }],
  },
  {
    name: 'draws only among usable targets',
    kind: 'random',
    targets: 'a b c',
    random: [0, 0.5, 0.99, 0.34],
    phases: [{ down: 'b', picks: 'a c c a' }],
  },
  {
    name: 'draws only among targets not excluded',
    kind: 'random',
    targets: 'a b c d',
    random: [0, 0.5, 0.99],
    phases: [{ exclude: 'a c', picks: 'b d d' }],
  },
  {
    name: 'a source returning 1 still picks a target',
    kind: 'random',
    targets: 'a b c',
    random: [1, 1],
    phases: [{ picks: 'c' }, { down: 'c', picks: 'b' }],
  },
  {
    name: 'all down draws nothing',
    kind: 'random',
    targets: 'a b',
    random: [],
    phases: [{ down: 'a b', picks: '- -' }],
  },

  // least-busy
  {
    name: 'takes the smallest load',
    kind: 'least-busy',
    targets: 'a b c',
    phases: [
      { loads: { a: 2, b: 1, c: 3 }, picks: 'b b b' },
      { loads: { a: 0, b: 1, c: 3 }, picks: 'a a' },
    ],
  },
  {
    name: 'rotates among equal loads',
    kind: 'least-busy',
    targets: 'a b c',
    phases: [{ picks: 'a b c a b c' }],
  },
  {
    name: 'rotates among the tied ones only',
    kind: 'least-busy',
    targets: 'a b c',
    phases: [{ loads: { a: 1 }, picks: 'b c b c' }],
  },
  {
    name: 'ignores down and excluded targets however idle',
    kind: 'least-busy',
    targets: 'a b c',
    phases: [
      { loads: { a: 0, b: 5, c: 9 }, down: 'a', picks: 'b b' },
      { loads: { a: 0, b: 5, c: 9 }, exclude: 'a b', picks: 'c' },
      { loads: { a: 0, b: 5, c: 9 }, picks: 'a' },
    ],
  },
  {
    name: 'equal loads with a target down rotate over the rest',
    kind: 'least-busy',
    targets: 'a b c',
    phases: [{ down: 'b', picks: 'a c a c' }, { picks: 'a b c' }],
  },
  { name: 'all down', kind: 'least-busy', targets: 'a b', phases: [{ down: 'a b', picks: '-' }] },

  // weighted (smooth weighted round-robin)
  {
    name: 'weights 5 1 1 give a a b a c a a, cycle after cycle',
    kind: 'weighted',
    targets: 'a:5 b:1 c:1',
    phases: [{ picks: 'a a b a c a a a a b a c a a' }],
  },
  {
    name: 'equal weights cycle',
    kind: 'weighted',
    targets: 'a b c',
    phases: [{ picks: 'a b c a b c' }],
  },
  { name: 'weights 2 1', kind: 'weighted', targets: 'a:2 b:1', phases: [{ picks: 'a b a a b a' }] },
  {
    name: 'a target that was down gains no credit and comes back to its plain share',
    kind: 'weighted',
    targets: 'a b',
    phases: [{ down: 'a', picks: 'b b b b b b b b b b' }, { picks: 'a b a b' }],
  },
  {
    name: 'weights 5 1 1 with the heavy target down for a while',
    kind: 'weighted',
    // Credits after 'a a b' are [1, -4, 3]. With a out, b and c share total 2: c is owed 3 and
    // takes four turns before b; a returns with the 1 it had.
    targets: 'a:5 b:1 c:1',
    phases: [{ picks: 'a a b' }, { down: 'a', picks: 'c c c c b' }, { picks: 'a a c a a b a' }],
  },
  {
    name: 'excluded targets are skipped like unusable ones',
    kind: 'weighted',
    targets: 'a:5 b:1 c:1',
    phases: [{ exclude: 'a', picks: 'b c b c' }, { picks: 'a a b a c a a' }],
  },
  {
    name: 'all down picks nothing and leaves credits alone',
    kind: 'weighted',
    targets: 'a:5 b:1 c:1',
    phases: [{ down: 'a b c', picks: '- - -' }, { picks: 'a a b a c a a' }],
  },

  // slow start: a share below 1 scales a target's picks relative to the others
  {
    name: 'round-robin: a target at share 0.5 gets one turn for two of the other',
    kind: 'round-robin',
    targets: 'a b',
    // Smooth weighted round-robin over shares 1 and 0.5; ties go to the earlier target.
    phases: [{ shares: { b: 0.5 }, picks: 'a b a a b a a b a' }],
  },
  {
    name: 'round-robin: share 1 is no ramp, and the cycle resumes after the last pick',
    kind: 'round-robin',
    targets: 'a b c',
    phases: [
      { shares: { a: 1, b: 1, c: 1 }, picks: 'a b' },
      { shares: { c: 0.5 }, picks: 'a b c' },
      { picks: 'a b c a' },
    ],
  },
  {
    name: 'round-robin: a ramping target that is down or excluded changes nothing',
    kind: 'round-robin',
    targets: 'a b c',
    phases: [
      { shares: { b: 0.5 }, down: 'b', picks: 'a c a c' },
      { shares: { b: 0.5 }, exclude: 'b', picks: 'a c' },
    ],
  },
  {
    name: 'round-robin: every target ramping alike takes turns evenly',
    kind: 'round-robin',
    targets: 'a b',
    phases: [{ shares: { a: 0.2, b: 0.2 }, picks: 'a b a b' }],
  },
  {
    name: 'round-robin: all down while ramping picks nothing',
    kind: 'round-robin',
    targets: 'a b',
    phases: [{ shares: { a: 0.5 }, down: 'a b', picks: '- -' }],
  },
  {
    name: 'least-busy: at idle a target at share 0.5 gets one pick for two of the other',
    kind: 'least-busy',
    targets: 'a b',
    phases: [{ shares: { b: 0.5 }, picks: 'a b a a b a' }],
  },
  {
    name: 'least-busy: while ramping, weights are share / (load + 1), so an idle ramper gets more',
    kind: 'least-busy',
    targets: 'a b',
    // Weights a: 1 / 4, b: 0.5 / 1.
    phases: [{ shares: { b: 0.5 }, loads: { a: 3 }, picks: 'b a b b a b' }],
  },
  {
    name: 'least-busy: back to the strict minimum once the ramp ends',
    kind: 'least-busy',
    targets: 'a b c',
    // Ramping, idle c weighs 0.1 against b's 1 / 2 and a's 1 / 3; then the least busy again.
    phases: [
      { shares: { c: 0.1 }, loads: { a: 2, b: 1, c: 0 }, picks: 'b' },
      { loads: { a: 2, b: 1, c: 0 }, picks: 'c c' },
    ],
  },
  {
    name: 'least-busy: a ramping target that is excluded leaves the strict minimum alone',
    kind: 'least-busy',
    targets: 'a b c',
    phases: [{ shares: { a: 0.5 }, exclude: 'a', loads: { b: 2, c: 1 }, picks: 'c c' }],
  },
  {
    name: 'weighted: the share multiplies the weight',
    kind: 'weighted',
    targets: 'a:2 b:1',
    phases: [{ shares: { a: 0.5 }, picks: 'a b a b' }, { picks: 'a b a a b a' }],
  },
  {
    name: 'random: shares weight the draw (a 1, b 0.5, c 1 over 2.5)',
    kind: 'random',
    targets: 'a b c',
    random: [0, 0.45, 0.5, 0.7, 0.99, 1],
    phases: [{ shares: { b: 0.5 }, picks: 'a b b c c c' }],
  },
];

function parseTargets(spec: string): FakeTarget[] {
  return spec
    .split(' ')
    .filter((s) => s.length > 0)
    .map((s) => {
      const [name, weight] = s.split(':');
      return new FakeTarget(name!, weight === undefined ? 1 : Number(weight));
    });
}

function names(spec: string | undefined): Set<string> {
  return new Set((spec ?? '').split(' ').filter((s) => s.length > 0));
}

function sequenceRandom(values: readonly number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error('random() called more often than the test expects');
    return values[i++]!;
  };
}

describe('createBalancer: exact selection sequences', () => {
  it.each(scenarios.map((s) => [`${s.kind}: ${s.name}`, s] as const))('%s', (_title, scenario) => {
    const targets = parseTargets(scenario.targets);
    const balancer: Balancer<FakeTarget> = createBalancer<FakeTarget>(
      scenario.kind,
      scenario.random === undefined ? undefined : sequenceRandom(scenario.random),
    );
    for (const phase of scenario.phases) {
      const down = names(phase.down);
      const excludedNames = names(phase.exclude);
      const exclude =
        excludedNames.size === 0 ? null : new Set(targets.filter((t) => excludedNames.has(t.name)));
      for (const t of targets) {
        t.current = phase.loads?.[t.name] ?? 0;
        t.share = phase.shares?.[t.name];
      }
      const isUsable = (t: FakeTarget) => !down.has(t.name);
      const expected = phase.picks.split(' ');
      const actual = expected.map(() => balancer.pick(targets, isUsable, exclude)?.name ?? '-');
      expect(actual.join(' ')).toBe(phase.picks);
    }
  });
});

/** mulberry32: a tiny seeded PRNG, so the distribution check is deterministic. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('random balancer', () => {
  afterEach(() => vi.restoreAllMocks());

  it('spreads picks uniformly over the usable targets', () => {
    const targets = parseTargets('a b c d');
    const balancer = createBalancer<FakeTarget>('random', seeded(42));
    const counts = new Map<string, number>();
    const picks = 40_000;
    for (let i = 0; i < picks; i++) {
      const name = balancer.pick(targets, (t) => t.name !== 'b')!.name;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    expect(counts.has('b')).toBe(false);
    for (const name of ['a', 'c', 'd']) {
      expect(Math.abs(counts.get(name)! / picks - 1 / 3)).toBeLessThan(0.02);
    }
  });

  it('uses Math.random when no source is given', () => {
    const spy = vi.spyOn(Math, 'random').mockReturnValue(0.6);
    const targets = parseTargets('a b');
    expect(createBalancer<FakeTarget>('random').pick(targets, () => true)?.name).toBe('b');
    expect(spy).toHaveBeenCalledTimes(1);
  });
});

describe('weighted balancer', () => {
  it('gives each target its share of a long run', () => {
    const targets = parseTargets('a:3 b:2 c:1');
    const balancer = createBalancer<FakeTarget>('weighted');
    const counts = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const name = balancer.pick(targets, () => true)!.name;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    expect(Object.fromEntries(counts)).toEqual({ a: 300, b: 200, c: 100 });
  });
});

describe('slow start shares over a long run', () => {
  it.each([
    ['round-robin', 'a b', { b: 0.25 }, { a: 400, b: 100 }],
    ['least-busy', 'a b', { b: 0.25 }, { a: 400, b: 100 }],
    ['weighted', 'a:3 b:1', { b: 0.5 }, { a: 420, b: 70 }],
  ] as const)('%s over %s with shares %o', (kind, spec, shares, expected) => {
    const targets = parseTargets(spec);
    for (const t of targets) t.share = (shares as Record<string, number>)[t.name];
    const balancer = createBalancer<FakeTarget>(kind);
    const total = Object.values(expected).reduce((a, b) => a + b, 0);
    const counts: Record<string, number> = {};
    for (let i = 0; i < total; i++) {
      const name = balancer.pick(targets, () => true)!.name;
      counts[name] = (counts[name] ?? 0) + 1;
    }
    expect(counts).toEqual(expected);
  });
});

describe('least-busy balancer', () => {
  it('reads each usable target load once per pick and never an unusable one', () => {
    const targets = parseTargets('a b c');
    const spies = targets.map((t) => vi.spyOn(t, 'load'));
    createBalancer<FakeTarget>('least-busy').pick(targets, (t) => t.name !== 'b');
    expect(spies.map((s) => s.mock.calls.length)).toEqual([1, 0, 1]);
  });
});

describe('createBalancer', () => {
  it('rejects an unknown kind from untyped callers', () => {
    expect(() => createBalancer('fastest' as BalancerKind)).toThrow(TypeError);
  });
});
