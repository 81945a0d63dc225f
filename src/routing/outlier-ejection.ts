/**
 * Outlier ejection: which replicas are out of read routing because they have gone silent, decided
 * once per sweep of the pool's housekeeping (never on the call path).
 *
 * Silence, not slowness. A replica is ejected when a health probe sent to it has waited
 * `slowMs` with no answer and nothing else it was sent was answered since the probe went out. A
 * server that is busy (a burst, a long report) still answers something, and a probe is one trivial
 * query on a connection of its own, so this does not fire on a healthy server under load; a frozen
 * process, a black-holed network or a stalled disk answers nothing, probe included. Statements of
 * the callers are the early warning: one sent since the replica last answered that waits a
 * quarter of `slowMs` asks the health monitor for a probe at once, instead of at its next round.
 *
 * Everything is measured in sweeps, from the generation statements and probes are stamped with
 * when written to the wire (the endpoint's `generation`): waiting in the pool's own queue, or for
 * a client another caller holds, never counts, and an event loop that stalls delays the sweep as
 * much as the answers, so it cannot make a server look silent.
 *
 * At most `maxEjectionPercent` of the replicas are ejected at once, the longest silent first (one
 * can always be, as in Envoy). An ejection lasts until a probe is answered within `slowMs`; as
 * soon as an ejected replica answers anything, a probe is asked for. Panic routing, when every
 * replica is out, is the router's (router.ts).
 */
import { generationsFor } from '../options/outlier.js';

/** What the detector reads of a replica: the endpoint keeps all of it anyway. */
export interface OutlierSubject {
  readonly name: string;
  /** Advanced by every sweep; statements are stamped with it when written to the wire. */
  readonly generation: number;
  /** Leases in flight: `sentAt` is the generation their statement was sent at, or -1. */
  readonly active: Iterable<{ readonly sentAt: number }>;
  /** Answers from the server so far (results and SQL errors). */
  readonly counters: { readonly successes: number; readonly sqlErrors: number };
}

export interface OutlierSettings {
  /** How long (ms) a probe may go unanswered, with nothing else answered, before ejection. */
  slowMs: number;
  /** Most replicas out at once, as a percentage of all (one is always allowed). */
  maxEjectionPercent: number;
  /** Period of the sweep (ms): what one generation is worth. */
  sweepMs: number;
}

export interface OutlierHooks<T> {
  /** Asks for a probe of `subject` now, out of the monitor's rounds (ignored if one is running). */
  requestProbe(subject: T): void;
}

/** What the detector knows of one replica. */
interface Watch<T> {
  readonly subject: T;
  /** Answers counted at the last sweep. */
  answered: number;
  /**
   * Statements and probes stamped with this generation or later were certainly sent after the
   * replica's last answer: only they can show that it went silent.
   */
  quietSince: number;
  /** Generation the probe in flight was sent at, or -1. */
  probeSentAt: number;
  /** A probe was asked for and has not started yet. */
  probeAsked: boolean;
  /** Why the replica is ejected, or null while it is routed. */
  reason: string | null;
  /** Times ejected, for stats. */
  ejections: number;
  /** How long the current silence has lasted, in generations (scratch for ranking). */
  silence: number;
}

const NONE = -1;

export class OutlierDetector<T extends OutlierSubject> {
  private readonly watches: Watch<T>[];
  private readonly bySubject = new Map<T, Watch<T>>();
  private readonly ejected = new Set<T>();
  /** Generations a probe waits unanswered before the replica counts as silent. */
  private readonly probeGenerations: number;
  /** Generations a statement waits unanswered before a probe is asked for. */
  private readonly callGenerations: number;
  /** Scratch list of the replicas found silent in a sweep; reused. */
  private readonly silent: Watch<T>[] = [];

  constructor(
    subjects: readonly T[],
    private readonly settings: OutlierSettings,
    private readonly hooks: OutlierHooks<T>,
  ) {
    this.probeGenerations = generationsFor(settings.slowMs, settings.sweepMs);
    this.callGenerations = generationsFor(settings.slowMs / 4, settings.sweepMs);
    this.watches = subjects.map((subject) => {
      const watch: Watch<T> = {
        subject,
        answered: answersOf(subject),
        quietSince: subject.generation,
        probeSentAt: NONE,
        probeAsked: false,
        reason: null,
        ejections: 0,
        silence: 0,
      };
      this.bySubject.set(subject, watch);
      return watch;
    });
  }

  /** Replicas ejected now. */
  get ejectedCount(): number {
    return this.ejected.size;
  }

  /** Whether `subject` is ejected (cheap; the router asks only while `ejectedCount > 0`). */
  isEjected(subject: T): boolean {
    return this.ejected.has(subject);
  }

  /** Why `subject` is ejected, or null. */
  reasonFor(subject: T): string | null {
    return this.bySubject.get(subject)?.reason ?? null;
  }

  /** Times `subject` was ejected since the pool was made. */
  ejectionsOf(subject: T): number {
    return this.bySubject.get(subject)?.ejections ?? 0;
  }

  /**
   * One sweep, after the endpoints' generations were advanced. `mayEject(t)`: `t` is otherwise in
   * routing (ejecting a replica that is down, or whose circuit is open, would only use up the
   * cap). Returns whether any replica was ejected.
   */
  tick(mayEject: (subject: T) => boolean): boolean {
    const silent = this.silent;
    silent.length = 0;
    for (const watch of this.watches) {
      const { subject } = watch;
      const generation = subject.generation;
      const answered = answersOf(subject);
      if (answered !== watch.answered) {
        watch.answered = answered;
        // Seen at this sweep, the answers came during the last period: a statement stamped then
        // may have been sent after them or before, so only later stamps count as after.
        watch.quietSince = generation;
        // Answering again: one probe decides whether it is back.
        if (watch.reason !== null) this.askForProbe(watch);
      }
      if (watch.reason !== null) continue;
      const oldestCall = this.oldestUnanswered(watch);
      // A probe is one trivial query: a live server answers it at once. So the replica is silent
      // once it has owed the probe for slowMs with nothing else answered meanwhile, counted from
      // the probe or from the last answer, whichever is later (a probe sent just before the last
      // answers was owed from then on; it cannot be waited out as a long statement can).
      const probeSilent =
        watch.probeSentAt !== NONE &&
        generation - Math.max(watch.probeSentAt, watch.quietSince) >= this.probeGenerations;
      if (probeSilent) {
        watch.silence = generation - Math.min(watch.probeSentAt, oldestCall ?? watch.probeSentAt);
        silent.push(watch);
      } else if (
        oldestCall !== undefined &&
        generation - oldestCall >= this.callGenerations &&
        watch.probeSentAt === NONE
      ) {
        this.askForProbe(watch);
      }
    }
    if (silent.length === 0) return false;
    // The longest silent first, while the cap allows.
    if (silent.length > 1) silent.sort((a, b) => b.silence - a.silence);
    let any = false;
    for (const watch of silent) {
      if (!this.mayEjectAnother()) break;
      if (!mayEject(watch.subject)) continue;
      this.eject(watch);
      any = true;
    }
    silent.length = 0;
    return any;
  }

  /** The health monitor sent a probe to `subject`. */
  probeStarted(subject: T): void {
    const watch = this.bySubject.get(subject);
    if (watch === undefined) return;
    watch.probeSentAt = subject.generation;
    watch.probeAsked = false;
  }

  /**
   * The probe of `subject` settled. `answered`: the server answered (a result, or an error of its
   * own); false for no answer in time or a connection that failed. A replica that answered within
   * `slowMs` is re-admitted.
   */
  probeSettled(subject: T, answered: boolean): void {
    const watch = this.bySubject.get(subject);
    if (watch === undefined || watch.probeSentAt === NONE) return;
    const generation = subject.generation;
    const took = generation - watch.probeSentAt;
    watch.probeSentAt = NONE;
    watch.probeAsked = false;
    if (!answered) return;
    // Answered during the current period: statements stamped now may predate the answer.
    watch.quietSince = generation + 1;
    if (watch.reason !== null && took < this.probeGenerations) this.readmit(watch);
  }

  /** Ends every ejection (the pool is ending; or for tests). */
  clear(): void {
    for (const watch of this.watches) watch.reason = null;
    this.ejected.clear();
  }

  /**
   * Envoy's rule: the first ejection is always allowed; another only while the replicas out stay
   * within `maxEjectionPercent`.
   */
  private mayEjectAnother(): boolean {
    const out = this.ejected.size;
    return out === 0 || (out + 1) * 100 <= this.settings.maxEjectionPercent * this.watches.length;
  }

  private eject(watch: Watch<T>): void {
    const ms = Math.round(watch.silence * this.settings.sweepMs);
    watch.reason = `silent: a probe and every statement sent since unanswered for about ${ms} ms (outlier.slowMs ${this.settings.slowMs})`;
    watch.ejections++;
    this.ejected.add(watch.subject);
  }

  private readmit(watch: Watch<T>): void {
    watch.reason = null;
    this.ejected.delete(watch.subject);
  }

  private askForProbe(watch: Watch<T>): void {
    if (watch.probeAsked || watch.probeSentAt !== NONE) return;
    watch.probeAsked = true;
    this.hooks.requestProbe(watch.subject);
  }

  /** The oldest generation a statement still on the wire was sent at since the last answer. */
  private oldestUnanswered(watch: Watch<T>): number | undefined {
    let oldest: number | undefined;
    for (const lease of watch.subject.active) {
      const sentAt = lease.sentAt;
      if (sentAt >= watch.quietSince && (oldest === undefined || sentAt < oldest)) oldest = sentAt;
    }
    return oldest;
  }
}

function answersOf(subject: OutlierSubject): number {
  return subject.counters.successes + subject.counters.sqlErrors;
}
