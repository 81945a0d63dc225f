import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { FakePool, socketError } from '../support/fake-pool.js';

const SECRET = 's3cr3t-passw0rd';

function memoryLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const open: ResilientPool[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.end({ timeout: 100 })));
});

describe('logging', () => {
  it('names the endpoint and never logs credentials', async () => {
    const { logger, lines } = memoryLogger();
    const primary = Object.assign(new FakePool('p'), {
      options: {
        max: 2,
        connectionString: `postgres://app:${SECRET}@db.internal:5432/app`,
        password: SECRET,
      },
    });
    primary.connectError = socketError('ECONNREFUSED');
    const db = new ResilientPool({
      primary,
      logger,
      breaker: { consecutiveFailures: 2 },
      retry: { retries: 1, minTimeout: 0, maxTimeout: 0 },
    });
    open.push(db);
    for (let i = 0; i < 3; i++)
      await db.write('INSERT INTO t VALUES ($1)', [SECRET]).catch(() => {});
    primary.emit('error', new Error('terminating connection due to administrator command'));
    await new Promise((r) => setTimeout(r, 10));
    const text = JSON.stringify(lines);
    expect(lines.length).toBeGreaterThan(0);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('db.internal');
    const breakerLine = lines.find((l) => String(l.msg).includes('circuit of "primary" is open'));
    expect(breakerLine).toMatchObject({ endpoint: 'primary', state: 'open', level: 40 });
    expect(lines.find((l) => String(l.msg).includes('idle client error'))).toMatchObject({
      endpoint: 'primary',
    });
    // Stats carry no connection details either.
    expect(JSON.stringify(db.stats())).not.toContain(SECRET);
  });
});
