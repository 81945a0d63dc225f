/**
 * A load loop to profile, not part of `npm run bench`:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/rp-prof --import tsx bench/profile.ts [fake|pg|pgraw|open|full] [seconds] [concurrency]
 *   npx tsx bench/cpuprofile-top.ts /tmp/rp-prof/<file>.cpuprofile
 *
 * fake: ResilientPool.query over the FakePool (the success path, no I/O);
 * pg:   ResilientPool.query against the bench server (DATABASE_URL or embedded);
 * pgraw: pg.Pool.query on the same kind of pool, for comparison;
 * open: refused calls of an open circuit; full: refused calls of a full queue.
 */

import { FakePool } from '../test/support/fake-pool.js';
import { timedRound } from './load.js';
import { openServer } from './server.js';
import { ResilientPool } from './subject.js';

const [mode = 'fake', secondsArg = '5', concurrencyArg = '32'] = process.argv.slice(2);
const ms = Number(secondsArg) * 1000;
const concurrency = Number(concurrencyArg);
const SQL = 'SELECT 1';
const swallow = (p: Promise<unknown>) => p.catch(() => undefined);

if (mode === 'fake') {
  const fake = new FakePool('fake', concurrency);
  const db = new ResilientPool({ primary: fake, logger: false });
  const r = await timedRound(
    () => {
      if (fake.statements.length > 100_000) fake.statements.length = 0;
      return db.query(SQL);
    },
    concurrency,
    ms,
  );
  console.log(`fake c=${concurrency}: ${Math.round(r.opsPerSec)} ops/s, ${r.errors} errors`);
  await db.end();
} else if (mode === 'pg' || mode === 'pgraw') {
  const server = await openServer();
  const pool = server.createPool({ max: concurrency });
  const db = new ResilientPool({ primary: pool, logger: false, ownsPools: false });
  const one = mode === 'pg' ? () => db.query(SQL) : () => pool.query(SQL);
  await timedRound(one, concurrency, 500);
  const r = await timedRound(one, concurrency, ms);
  console.log(
    `${mode} ${server.label} c=${concurrency}: ${Math.round(r.opsPerSec)} ops/s, ${r.cpuUsPerOp.toFixed(1)} µs CPU/op`,
  );
  await db.end();
  await pool.end();
  await server.stop();
} else if (mode === 'open' || mode === 'full') {
  const fake = new FakePool('f', 1);
  let db: ResilientPool;
  if (mode === 'open') {
    fake.connectError = Object.assign(new Error('x'), { code: 'ECONNREFUSED' });
    db = new ResilientPool({
      primary: fake,
      logger: false,
      breaker: { volumeThreshold: 1, errorThresholdPercentage: 1, resetTimeout: 600_000 },
      retry: { retries: 0 },
      // As in bench/rejection.ts: probes would declare the endpoint down (E_ENDPOINT_DOWN).
      health: { enabled: false },
    });
    while (db.stats().endpoints[0]!.breaker !== 'open') await swallow(db.query(SQL));
  } else {
    fake.connectHangs = true;
    db = new ResilientPool({
      primary: fake,
      logger: false,
      queue: { maxWaiting: 0, acquireTimeout: 600_000 },
      health: { enabled: false },
    });
    swallow(db.query(SQL));
  }
  const r = await timedRound(() => swallow(db.query(SQL)), 1, ms);
  console.log(`${mode}: ${Math.round(1e9 / r.opsPerSec)} ns per refused call`);
  process.exit(0);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
