/**
 * The leases in flight at one endpoint (statements running, clients checked out): what `kill`,
 * the slow-call sweep and outlier detection walk. Every call enters and leaves it once.
 *
 * An intrusive list, not a Set: a Set (or Map) that gains and loses an entry per call rebuilds
 * its hash table every few dozen calls, and V8 leaves each retired table pointing at its
 * successor and at the entries it held then (for iterators still on it). Once one retired table
 * is in the old generation, the scavenger takes its slots as roots, so every later table, and the
 * leases, queries and results they name, survive scavenges and are promoted, until the next full
 * mark-compact. Against a real server (each call spans event-loop turns) that promoted about
 * 1.1 KB a call and made each scavenge 10-40 times longer than a bare pg.Pool's. The list
 * allocates nothing and a lease that leaves is unlinked both ways, so nothing of it is left for a
 * dead object to hold.
 */

import type { ActiveLease } from './lease.js';

export class ActiveLeases implements Iterable<ActiveLease> {
  private head: ActiveLease | undefined;
  private tail: ActiveLease | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds `lease` at the end; a lease already listed stays where it is. */
  add(lease: ActiveLease): void {
    if (lease.listPrev !== undefined || this.head === lease) return;
    lease.listNext = undefined;
    lease.listPrev = this.tail;
    if (this.tail === undefined) this.head = lease;
    else this.tail.listNext = lease;
    this.tail = lease;
    this.count++;
  }

  /** Removes `lease` if listed; returns whether it was. */
  delete(lease: ActiveLease): boolean {
    const { listPrev: prev, listNext: next } = lease;
    if (prev === undefined && this.head !== lease) return false;
    if (prev === undefined) this.head = next;
    else prev.listNext = next;
    if (next === undefined) this.tail = prev;
    else next.listPrev = prev;
    lease.listPrev = undefined;
    lease.listNext = undefined;
    this.count--;
    return true;
  }

  /** The leases listed when iteration begins, oldest first (removals meanwhile do not cut it). */
  [Symbol.iterator](): Iterator<ActiveLease> {
    const leases: ActiveLease[] = [];
    for (let lease = this.head; lease !== undefined; lease = lease.listNext) leases.push(lease);
    return leases[Symbol.iterator]();
  }
}
