/**
 * pg-pool's events ('connect', 'acquire', 'release', 'remove', 'error') forwarded from the
 * wrapped pools to the ResilientPool, with fake pools: pg's arguments in pg's order, then the
 * endpoint's name; listeners that throw or reject never reach pg-pool or the call; nothing is
 * emitted to nobody; the listeners leave pools the ResilientPool does not own when it ends.
 */
import { describe, expect, it, vi } from 'vitest';
import type { LoggerLike, PgClientLike } from '../../src/index.js';
import { FakePool } from '../support/fake-pool.js';
import { usePools } from '../support/make-pool.js';

const make = usePools();

/** A FakePool that emits pg-pool's events around each checkout, as pg-pool does. */
class EmittingPool extends FakePool {
  private readonly seen = new WeakSet<object>();

  override connect(): Promise<PgClientLike>;
  override connect(
    callback: (err: Error | undefined, client: PgClientLike | undefined, done: () => void) => void,
  ): void;
  override connect(
    callback?: (err: Error | undefined, client: PgClientLike | undefined, done: () => void) => void,
  ): Promise<PgClientLike> | undefined {
    const checkedOut = super.connect().then((client) => {
      // pg-pool: 'connect' for a new client, then 'acquire'; the listeners' errors are the
      // pool's problem only if they escape emit(), which they must not.
      if (!this.seen.has(client)) {
        this.seen.add(client);
        this.emit('connect', client);
      }
      this.emit('acquire', client);
      const release = client.release;
      client.release = (err?: Error | boolean) => {
        this.emit('release', err, client);
        release(err);
        if (err) this.emit('remove', client);
      };
      return client;
    });
    if (callback === undefined) return checkedOut;
    checkedOut.then(
      (client) => callback(undefined, client, () => client.release()),
      (err: Error) => callback(err, undefined, () => {}),
    );
    return undefined;
  }
}

function quietLogger() {
  const error = vi.fn<LoggerLike['error']>();
  return { error, warn: vi.fn(), info: vi.fn(), debug: vi.fn() } satisfies LoggerLike;
}

describe('pool events', () => {
  it("forwards connect, acquire and release from every endpoint with pg's arguments and the endpoint's name", async () => {
    const primary = new EmittingPool('p');
    const replica = new EmittingPool('r');
    const db = make({ primary, replicas: [{ pool: replica, name: 'r1' }] });
    const events: unknown[][] = [];
    db.on('connect', (client, endpoint) => events.push(['connect', client, endpoint]));
    db.on('acquire', (client, endpoint) => events.push(['acquire', client, endpoint]));
    db.on('release', (err, client, endpoint) => events.push(['release', err, client, endpoint]));

    await db.query('SELECT 1');
    await db.read('SELECT 2');
    await db.query('SELECT 3'); // the primary's client again: no second 'connect'

    const p = events[0]?.[1];
    expect(events.map((e) => [e[0], e.at(-1)])).toEqual([
      ['connect', 'primary'],
      ['acquire', 'primary'],
      ['release', 'primary'],
      ['connect', 'r1'],
      ['acquire', 'r1'],
      ['release', 'r1'],
      ['acquire', 'primary'],
      ['release', 'primary'],
    ]);
    // The wrapped pool's own client object, and pg's (err, client) for 'release'.
    expect(p).toBeInstanceOf(Object);
    expect(events[1]?.[1]).toBe(p);
    expect(events[2]?.slice(1, 3)).toEqual([undefined, p]);
  });

  it("forwards 'remove' and passes release's error when a client is destroyed", async () => {
    const primary = new EmittingPool('p');
    const db = make({ primary });
    const removed: string[] = [];
    const released: unknown[] = [];
    db.on('remove', (_client, endpoint) => removed.push(endpoint));
    db.on('release', (err) => released.push(err));
    const client = await db.connect();
    client.release(true);
    expect(removed).toEqual(['primary']);
    expect(released).toEqual([true]);
  });

  it("forwards 'error' with the client and the endpoint's name, and tags the error", async () => {
    const primary = new FakePool('p');
    const db = make({ primary });
    const seen: unknown[][] = [];
    db.on('error', (err, client, endpoint) => seen.push([err.endpoint, client, endpoint]));
    const idle = { idle: true };
    primary.emit('error', new Error('terminating connection'), idle);
    expect(seen).toEqual([['primary', idle, 'primary']]);
  });

  it('listeners that throw or reject are logged; pg-pool and the call never see it', async () => {
    const logger = quietLogger();
    const primary = new EmittingPool('p');
    const db = make({ primary, logger });
    const calls: string[] = [];
    db.on('connect', () => {
      calls.push('throws');
      throw new Error('listener bug');
    });
    db.on('connect', async () => {
      calls.push('rejects');
      throw new Error('async listener bug');
    });
    db.on('acquire', () => calls.push('acquire still heard'));
    const unhandled = vi.fn();
    process.on('unhandledRejection', unhandled);
    try {
      await expect(db.query('SELECT 1')).resolves.toMatchObject({ rows: [{ ok: 1 }] });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', unhandled);
    }
    expect(calls).toEqual(['throws', 'rejects', 'acquire still heard']);
    expect(unhandled).not.toHaveBeenCalled();
    expect(logger.error).toHaveBeenCalledTimes(2);
    expect(logger.error.mock.calls.map((c) => (c[0] as { event: string }).event)).toEqual([
      'connect',
      'connect',
    ]);
  });

  it('once() hears one event and off() stops a listener', async () => {
    const primary = new EmittingPool('p');
    const db = make({ primary });
    const once: string[] = [];
    const always: string[] = [];
    const listener = (_client: PgClientLike, endpoint: string) => always.push(endpoint);
    db.once('acquire', (_client, endpoint) => once.push(endpoint));
    db.on('acquire', listener);
    await db.query('SELECT 1');
    db.off('acquire', listener);
    await db.query('SELECT 2');
    expect(once).toEqual(['primary']);
    expect(always).toEqual(['primary']);
  });

  it('emits nothing and builds no arguments while nobody listens', async () => {
    const primary = new EmittingPool('p');
    const db = make({ primary });
    const emit = vi.spyOn(db, 'emit');
    await db.query('SELECT 1');
    expect(emit).not.toHaveBeenCalled();
    // Each wrapped pool carries one listener per event, not one per ResilientPool listener.
    db.on('acquire', () => {});
    db.on('acquire', () => {});
    expect(primary.listenerCount('acquire')).toBe(1);
    expect(primary.listenerCount('error')).toBe(1);
  });

  it('removes its listeners from pools it does not own when it ends', async () => {
    const primary = new EmittingPool('p');
    const replica = new EmittingPool('r');
    const db = make({ primary, replicas: [replica], ownsPools: false });
    for (const event of ['connect', 'acquire', 'release', 'remove', 'error']) {
      expect(primary.listenerCount(event), event).toBe(1);
      expect(replica.listenerCount(event), event).toBe(1);
    }
    await db.end();
    for (const event of ['connect', 'acquire', 'release', 'remove', 'error']) {
      expect(primary.listenerCount(event), event).toBe(0);
      expect(replica.listenerCount(event), event).toBe(0);
    }
  });

  it('forwards the events of every primary candidate under the primary endpoint', async () => {
    const a = new EmittingPool('a');
    const b = new EmittingPool('b');
    const db = make({ primary: [a, b], health: { enabled: false } });
    const names: string[] = [];
    db.on('connect', (_client, endpoint) => names.push(endpoint));
    a.emit('connect', {});
    b.emit('connect', {});
    expect(names).toEqual(['primary', 'primary']);
  });
});
