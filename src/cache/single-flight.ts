/**
 * In-process single-flight: while work for a key is in flight, every other caller for that key
 * gets the same promise instead of starting its own. The owner of a flight ends it (`done`) as
 * soon as its outcome is known, so a later caller starts afresh (and, for the cache, finds the
 * entry just written). Ending is left to the owner rather than hung on the promise, which saves
 * a promise per flight on the cache's hit path.
 */
export class SingleFlight<T> {
  private readonly flights = new Map<string, Promise<T>>();

  /** Keys in flight. */
  get size(): number {
    return this.flights.size;
  }

  /** The flight for `key` if one is out, else undefined. */
  joined(key: string): Promise<T> | undefined {
    return this.flights.get(key);
  }

  /**
   * Registers `flight` for `key`. The work behind it must call `done(key)` when it settles, and
   * not before this call (work that settles in a later microtask, as any promise callback does).
   */
  add(key: string, flight: Promise<T>): void {
    this.flights.set(key, flight);
  }

  /** Ends the flight for `key`. */
  done(key: string): void {
    this.flights.delete(key);
  }
}
