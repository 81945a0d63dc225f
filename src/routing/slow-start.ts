/**
 * Slow start (Envoy's): a replica coming back from an outage gets a traffic share that ramps
 * linearly from a floor to 1 over a window, so that a server whose caches went cold, or that is
 * still recovering, is not handed its whole share of reads at once.
 *
 * The share is a plain number on each target (`share`), rewritten once per sweep of the pool's
 * housekeeping rather than computed per pick: the balancers read a field, and no clock is read on
 * the call path. A ramp therefore moves in steps of one sweep (a twentieth of the window at most).
 * Outside a ramp every share is exactly 1, which the balancers treat as "no slow start".
 */

/** What slow start needs of a target: the share it writes, read by the balancers. */
export interface RampTarget {
  /** Fraction of its full share of picks the target gets, in (0, 1]; 1 outside a ramp. */
  share: number;
}

export interface SlowStartSettings {
  /** Length of the ramp, in ms (> 0). */
  windowMs: number;
  /** Share at the start of the ramp, in (0, 1]. */
  minShare: number;
}

const NOT_RAMPING = -1;

/** The ramp of one target. */
class Ramp {
  /** Whether the target was in an outage at the last update. */
  wasOut = false;
  /** When the current ramp began (ms), or NOT_RAMPING. */
  startedAt = NOT_RAMPING;
}

/**
 * The ramps of a fixed list of targets. `update(now)` is called once per sweep with the clock and
 * a predicate saying which targets are in an outage; a target that leaves one starts a ramp.
 */
export class SlowStart<T extends RampTarget> {
  private readonly ramps: Ramp[];

  constructor(
    private readonly targets: readonly T[],
    private readonly settings: SlowStartSettings,
  ) {
    this.ramps = targets.map(() => new Ramp());
  }

  /**
   * Moves every ramp on to `now`. `inOutage(t)`: the target is out of routing because something
   * went wrong with it (not merely held back for lag). A target that is out has share 1 (it is
   * not routed, and in panic routing it must not be handicapped); one that came back since the
   * last update starts at the floor.
   */
  update(now: number, inOutage: (target: T) => boolean): void {
    const { windowMs, minShare } = this.settings;
    for (let i = 0; i < this.targets.length; i++) {
      const target = this.targets[i]!;
      const ramp = this.ramps[i]!;
      if (inOutage(target)) {
        ramp.wasOut = true;
        ramp.startedAt = NOT_RAMPING;
        target.share = 1;
        continue;
      }
      if (ramp.wasOut) {
        ramp.wasOut = false;
        ramp.startedAt = now;
        target.share = minShare;
        continue;
      }
      if (ramp.startedAt === NOT_RAMPING) continue;
      // A clock that went backwards (a wall-clock step) restarts nothing and shortens nothing.
      const elapsed = Math.max(0, now - ramp.startedAt);
      if (elapsed >= windowMs) {
        ramp.startedAt = NOT_RAMPING;
        target.share = 1;
      } else {
        target.share = minShare + ((1 - minShare) * elapsed) / windowMs;
      }
    }
  }

  /** Whether `target` is ramping now (its share below 1 since it came back). */
  isRamping(target: T): boolean {
    const i = this.targets.indexOf(target);
    return i >= 0 && this.ramps[i]!.startedAt !== NOT_RAMPING;
  }
}
