/**
 * resilient-pool/typeorm with a fake pool: the options it returns, and the pg module stand-in
 * whose Pools are views of one ResilientPool.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  type TypeormPool,
  typeormDataSourceOptions,
} from '../../../src/integrations/typeorm/index.js';
import type { PgClientLike } from '../../../src/pg-like.js';

function fakePool() {
  const emitter = new EventEmitter();
  const roles: Array<'read' | 'write' | undefined> = [];
  const released: Array<Error | boolean | undefined> = [];
  const pool = {
    connect: (options?: { role?: 'read' | 'write' }) => {
      roles.push(options?.role);
      if (options?.role === 'read' && emitter.listenerCount('refuse') > 0) {
        return Promise.reject(new Error('no replica'));
      }
      return Promise.resolve({
        release: (err?: Error | boolean) => released.push(err),
      } as unknown as PgClientLike);
    },
    on: (event: string, listener: (...args: unknown[]) => void) => emitter.on(event, listener),
    off: (event: string, listener: (...args: unknown[]) => void) => emitter.off(event, listener),
    totalCount: 3,
    idleCount: 2,
    waitingCount: 1,
  };
  return { pool: pool as unknown as TypeormPool, emitter, roles, released };
}

describe('typeormDataSourceOptions', () => {
  it("returns TypeORM's replication option by default", () => {
    const options = typeormDataSourceOptions(fakePool().pool);
    expect(options.type).toBe('postgres');
    expect(options.replication).toEqual({
      master: { host: 'resilient-pool.primary' },
      slaves: [{ host: 'resilient-pool.replicas' }],
    });
    expect(typeof options.driver.Pool).toBe('function');
  });

  it("returns no replication with reads: 'primary'", () => {
    const options = typeormDataSourceOptions(fakePool().pool, { reads: 'primary' });
    expect(options.replication).toBeUndefined();
    expect(options.host).toBe('resilient-pool.primary');
  });

  it('refuses an unknown reads value', () => {
    expect(() =>
      typeormDataSourceOptions(fakePool().pool, { reads: 'replicas' as 'replica' }),
    ).toThrow(/reads must be 'replica' or 'primary'/);
  });
});

describe('the pg module stand-in', () => {
  it('checks out primary clients for the master and replica clients for slaves', async () => {
    const fake = fakePool();
    const { driver } = typeormDataSourceOptions(fake.pool);
    const master = new driver.Pool({ host: 'resilient-pool.primary' });
    const slave = new driver.Pool({ host: 'resilient-pool.replicas' });
    const other = new driver.Pool({ host: 'db.example.com' });
    await master.connect();
    await slave.connect();
    await other.connect();
    expect(fake.roles).toEqual(['write', 'read', 'write']);
    expect([master.totalCount, master.idleCount, master.waitingCount]).toEqual([3, 2, 1]);
  });

  it("answers pg's callback form, and release(err) reaches the client", async () => {
    const fake = fakePool();
    const { driver } = typeormDataSourceOptions(fake.pool);
    const pool = new driver.Pool({ host: 'resilient-pool.primary' });
    const boom = new Error('broken');
    await new Promise<void>((resolve) => {
      pool.connect((err, client, done) => {
        expect(err).toBeUndefined();
        expect(client).toBeDefined();
        done?.(boom);
        resolve();
      });
    });
    expect(fake.released).toEqual([boom]);

    fake.emitter.on('refuse', () => {});
    const replicas = new driver.Pool({ host: 'resilient-pool.replicas' });
    const failure = await new Promise<Error | undefined>((resolve) => {
      replicas.connect((err) => resolve(err));
    });
    expect(failure?.message).toBe('no replica');
  });

  it("forwards 'error' listeners to the pool until the view is ended, and leaves it open", async () => {
    const fake = fakePool();
    const { driver } = typeormDataSourceOptions(fake.pool);
    const view = new driver.Pool({ host: 'resilient-pool.primary' });
    const seen: string[] = [];
    const listener = (err: Error) => seen.push(err.message);
    view.on('error', listener);
    view.on('error', listener);
    view.on('notice', listener);
    fake.emitter.emit('error', new Error('idle client lost'));
    expect(seen).toEqual(['idle client lost']);
    await new Promise<void>((resolve) => view.end(() => resolve()));
    expect(fake.emitter.listenerCount('error')).toBe(0);
    await view.end();

    // The slaves' views share the pool: the master's view alone forwards its errors.
    const slave = new driver.Pool({ host: 'resilient-pool.replicas' });
    slave.on('error', listener);
    expect(fake.emitter.listenerCount('error')).toBe(0);

    const other = new driver.Pool({ host: 'resilient-pool.primary' });
    other.on('error', listener);
    expect(fake.emitter.listenerCount('error')).toBe(1);
    other.removeListener('error', listener);
    expect(fake.emitter.listenerCount('error')).toBe(0);
  });
});
