/**
 * ActiveLeases, the endpoint's list of leases in flight: Set-like membership (add once, delete
 * once, size), iteration oldest first over the leases listed when it began, and no link left on
 * a lease that left (a removed lease must not keep another alive).
 */
import { describe, expect, it } from 'vitest';
import { ActiveLeases } from '../../src/endpoint/active-leases.js';
import type { ActiveLease } from '../../src/endpoint/lease.js';

function lease(name: string): Named {
  return {
    name,
    sentAt: -1,
    slowCounted: false,
    listPrev: undefined,
    listNext: undefined,
    connectionLost() {},
    kill() {},
  };
}

type Named = ActiveLease & { name: string };

const names = (list: ActiveLeases) => [...list].map((l) => (l as Named).name);

describe('ActiveLeases', () => {
  it('keeps leases in the order they were added, each once', () => {
    const list = new ActiveLeases();
    const [a, b, c] = [lease('a'), lease('b'), lease('c')];
    list.add(a);
    list.add(b);
    list.add(c);
    list.add(a);
    list.add(c);
    expect(list.size).toBe(3);
    expect(names(list)).toEqual(['a', 'b', 'c']);
  });

  it('deletes from the head, the middle and the tail, and says whether the lease was there', () => {
    for (const victim of ['a', 'b', 'c']) {
      const list = new ActiveLeases();
      const all = [lease('a'), lease('b'), lease('c')];
      for (const l of all) list.add(l);
      const removed = all.find((l) => l.name === victim) as ActiveLease;
      expect(list.delete(removed)).toBe(true);
      expect(list.delete(removed)).toBe(false);
      expect(list.size).toBe(2);
      expect(names(list)).toEqual(all.filter((l) => l !== removed).map((l) => l.name));
      expect(removed.listPrev).toBeUndefined();
      expect(removed.listNext).toBeUndefined();
    }
  });

  it('refuses to delete a lease never added, even from an empty list', () => {
    const list = new ActiveLeases();
    expect(list.delete(lease('x'))).toBe(false);
    list.add(lease('a'));
    expect(list.delete(lease('x'))).toBe(false);
    expect(list.size).toBe(1);
  });

  it('empties and refills (the lone lease is both ends)', () => {
    const list = new ActiveLeases();
    const a = lease('a');
    list.add(a);
    expect(list.delete(a)).toBe(true);
    expect(list.size).toBe(0);
    expect(names(list)).toEqual([]);
    list.add(a);
    list.add(lease('b'));
    expect(names(list)).toEqual(['a', 'b']);
  });

  it('iterates over the leases listed when iteration began, whatever leaves or joins meanwhile', () => {
    const list = new ActiveLeases();
    const all = [lease('a'), lease('b'), lease('c'), lease('d')];
    for (const l of all) list.add(l);
    const seen: string[] = [];
    for (const l of list) {
      seen.push((l as Named).name);
      list.delete(l);
      if (seen.length === 1) {
        list.delete(all[2] as ActiveLease);
        list.add(lease('e'));
      }
    }
    expect(seen).toEqual(['a', 'b', 'c', 'd']);
    expect(names(list)).toEqual(['e']);
  });

  it('keeps the list whole over many calls entering and leaving out of order', () => {
    const list = new ActiveLeases();
    const inFlight: ActiveLease[] = [];
    let wrong = 0;
    let seed = 7;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed;
    };
    for (let i = 0; i < 2_000; i++) {
      if (inFlight.length < 32 && next() % 3 !== 0) {
        const l = lease(String(i));
        list.add(l);
        inFlight.push(l);
      } else if (inFlight.length > 0) {
        const [l] = inFlight.splice(next() % inFlight.length, 1);
        if (!list.delete(l as ActiveLease)) wrong++;
      }
      if (list.size !== inFlight.length) wrong++;
    }
    expect(wrong).toBe(0);
    expect(new Set(list)).toEqual(new Set(inFlight));
  });
});
