/**
 * One direction of a proxied connection: bytes read from `source` are shaped by the proxy's
 * current faults and written to `destination`. A connection has two lanes, client-to-target and
 * target-to-client, so each direction keeps its own order, its own bandwidth budget and its own
 * end-of-stream.
 */
import type net from 'node:net';
import { performance } from 'node:perf_hooks';

/** The proxy's fault settings. One object shared by every lane, read when a chunk arrives. */
export interface ChaosFaultState {
  /** New connections are reset as soon as they are accepted. */
  refuse: boolean;
  /** Bytes (and ends of stream) are held back or dropped instead of delivered. */
  blackhole: boolean;
  latencyMs: number;
  jitterMs: number;
  /** Per lane; `Infinity` when unlimited. */
  bytesPerSec: number;
}

/** What a lane reports to the proxy's counters. */
export interface LaneCounters {
  forwarded(bytes: number): void;
  dropped(bytes: number): void;
}

interface Pending {
  chunk: Buffer;
  /** performance.now() time at which the chunk may be written. */
  at: number;
}

/** How the source finished, and so what its destination is told. */
type SourceDone = 'end' | 'reset' | 'destroy';

/**
 * Past this many queued bytes the source is paused: with a bandwidth limit a fast sender would
 * otherwise queue its whole output in memory. Reading resumes below LOW_WATER.
 */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
/** Timers fire up to ~1 ms late or early relative to performance.now(); close enough is due. */
const DUE_TOLERANCE_MS = 1;
/** Largest slice under a bandwidth limit, so a 64 kB read still trickles out smoothly. */
const MAX_SLICE = 16 * 1024;
/** A slice carries this much time's worth of the budget: at most ~20 timers a second a lane. */
const SLICE_MS = 50;

export class ChaosLane {
  readonly #source: net.Socket;
  readonly #destination: net.Socket;
  readonly #faults: ChaosFaultState;
  readonly #counters: LaneCounters;
  #queue: Pending[] = [];
  #queuedBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Release time of the last queued chunk: jitter must not let a later chunk overtake it. */
  #lastAt = 0;
  /** When the bandwidth budget allows the next byte out. */
  #nextFree = 0;
  #sourceError: Error | undefined;
  #sourceDone: SourceDone | undefined;
  #finished = false;
  #pausedForQueue = false;
  #pausedForDrain = false;
  #paused = false;

  constructor(
    source: net.Socket,
    destination: net.Socket,
    faults: ChaosFaultState,
    counters: LaneCounters,
  ) {
    this.#source = source;
    this.#destination = destination;
    this.#faults = faults;
    this.#counters = counters;
    source.on('data', (chunk: Buffer) => this.#push(chunk));
    source.on('end', () => this.#sourceFinished('end'));
    // Every socket is the source of exactly one lane, so this is its only 'error' listener: an
    // error on either side of a connection never becomes an uncaught exception.
    source.on('error', (err) => {
      this.#sourceError = err;
    });
    // A source that failed (reset by its peer, or a target that refused the connection) is
    // passed on as an RST, the closest a proxy can get to showing the same failure; one closed
    // without an error (destroyed by us) as a plain close.
    source.on('close', () => this.#sourceFinished(this.#sourceError ? 'reset' : 'destroy'));
    destination.on('drain', () => {
      this.#pausedForDrain = false;
      this.#updateFlow();
    });
  }

  /** Drops what is queued; called when a black hole opens, as nothing may be delivered. */
  dropQueued(): void {
    this.#clearTimer();
    for (const { chunk } of this.#queue) this.#counters.dropped(chunk.length);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#lastAt = 0;
    this.#nextFree = 0;
    this.#pausedForQueue = false;
    this.#updateFlow();
  }

  /**
   * Writes everything queued now, in order, then passes on an end of stream that was held back.
   * Called by heal(): the delays are lifted, the bytes they held were accepted and are owed.
   */
  flushAll(): void {
    this.#clearTimer();
    const queue = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#lastAt = 0;
    this.#nextFree = 0;
    for (const { chunk } of queue) this.#write(chunk);
    this.#pausedForQueue = false;
    this.#updateFlow();
    this.#maybeFinish();
  }

  /** Stops the lane's timer; the sockets are destroyed by the connection. */
  dispose(): void {
    this.#clearTimer();
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  #push(chunk: Buffer): void {
    const faults = this.#faults;
    if (faults.blackhole) {
      this.#counters.dropped(chunk.length);
      return;
    }
    const jitter = faults.jitterMs > 0 ? (Math.random() * 2 - 1) * faults.jitterMs : 0;
    const delay = Math.max(0, faults.latencyMs + jitter);
    const limited = Number.isFinite(faults.bytesPerSec);
    if (delay === 0 && !limited && this.#queue.length === 0) {
      // No shaping: pass straight through, as a plain pipe would.
      this.#write(chunk);
      return;
    }
    const now = performance.now();
    const at = Math.max(now + delay, this.#lastAt);
    if (limited) {
      const rate = faults.bytesPerSec;
      const slice = Math.max(1, Math.min(MAX_SLICE, Math.floor((rate * SLICE_MS) / 1000)));
      for (let offset = 0; offset < chunk.length; offset += slice) {
        const part = chunk.subarray(offset, offset + slice);
        const sendAt = Math.max(at, this.#nextFree);
        this.#nextFree = sendAt + (part.length * 1000) / rate;
        this.#enqueue(part, sendAt);
      }
    } else {
      this.#enqueue(chunk, at);
    }
    if (this.#queuedBytes > HIGH_WATER && !this.#pausedForQueue) {
      this.#pausedForQueue = true;
      this.#updateFlow();
    }
    if (this.#timer === undefined) this.#flushDue();
  }

  #enqueue(chunk: Buffer, at: number): void {
    this.#queue.push({ chunk, at });
    this.#queuedBytes += chunk.length;
    this.#lastAt = at;
  }

  #flushDue(): void {
    this.#clearTimer();
    const now = performance.now();
    let written = 0;
    while (written < this.#queue.length && this.#queue[written]!.at <= now + DUE_TOLERANCE_MS) {
      const { chunk } = this.#queue[written]!;
      this.#queuedBytes -= chunk.length;
      this.#write(chunk);
      written++;
    }
    if (written > 0) this.#queue.splice(0, written);
    const head = this.#queue[0];
    if (head !== undefined) {
      this.#timer = setTimeout(() => this.#flushDue(), Math.max(1, Math.ceil(head.at - now)));
    }
    if (this.#pausedForQueue && this.#queuedBytes < LOW_WATER) {
      this.#pausedForQueue = false;
      this.#updateFlow();
    }
    this.#maybeFinish();
  }

  #write(chunk: Buffer): void {
    const destination = this.#destination;
    if (destination.destroyed || !destination.writable) {
      this.#counters.dropped(chunk.length);
      return;
    }
    this.#counters.forwarded(chunk.length);
    if (!destination.write(chunk) && !this.#pausedForDrain) {
      this.#pausedForDrain = true;
      this.#updateFlow();
    }
  }

  #sourceFinished(how: SourceDone): void {
    // 'close' follows 'end' after a clean shutdown; the end already says how it finished.
    if (this.#sourceDone !== undefined) return;
    this.#sourceDone = how;
    this.#maybeFinish();
  }

  /**
   * Passes the source's end on once every queued byte has gone out. Inside a black hole it is
   * held: a partitioned network does not deliver a FIN or an RST either. heal() releases it.
   */
  #maybeFinish(): void {
    const done = this.#sourceDone;
    if (done === undefined || this.#finished || this.#queue.length > 0 || this.#faults.blackhole) {
      return;
    }
    this.#finished = true;
    const destination = this.#destination;
    if (destination.destroyed) return;
    if (done === 'end') destination.end();
    else if (done === 'reset') destination.resetAndDestroy();
    else destination.destroy();
  }

  #updateFlow(): void {
    const pause = this.#pausedForQueue || this.#pausedForDrain;
    if (pause === this.#paused || this.#source.destroyed) return;
    this.#paused = pause;
    if (pause) this.#source.pause();
    else this.#source.resume();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}
