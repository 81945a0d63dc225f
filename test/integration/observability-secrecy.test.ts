/**
 * No parameter value and no password ever leaves through telemetry. The pools log in as a role
 * with a secret-looking password (in a connection string for the primary, in a config object for
 * the replicas); every statement carries secret-looking parameters, one fails with its value
 * quoted in PostgreSQL's message, reads are retried and moved off a replica whose connections
 * are refused, its circuit opens and it is ejected. With metrics, tracing (the text opted
 * in) and every diagnostics channel on, nothing they carry contains a secret: no metric label or
 * description, no span name, attribute, event or status, no channel message.
 *
 * The one thing left out of the search is what Node's tracePromise puts on the query channel's
 * context, `result` and `error`: those are the call's outcome, the very objects the caller gets
 * (the test checks that they are), not something telemetry adds.
 */
import diagnostics from 'node:diagnostics_channel';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIAGNOSTICS_CHANNELS, type QueryChannelContext, ResilientPool } from '../../src/index.js';
import { ChaosProxy } from '../../src/testing/index.js';
import { useCluster } from '../support/cluster.js';
import { guardEachTest } from '../support/guards.js';
import { type SdkMetrics, type SdkTracing, sdkMetrics, sdkTracing } from '../support/otel-sdk.js';
import { until } from '../support/wait.js';

const handle = useCluster({ replicas: 2 });
const ROLE = 'observed_app';
const PASSWORD = 'pw-S3CR3T-9f2c-do-not-leak';
/** Every secret parameter contains this, so one search finds them all. */
const MARK = 'S3CR3T';
const param = (what: string) => `param-${MARK}-${what}`;

const contextManager = new AsyncLocalStorageContextManager();
let metrics: SdkMetrics;
let tracing: SdkTracing;
let db: ResilientPool | undefined;
let proxy: ChaosProxy | undefined;
const unsubscribe: Array<() => void> = [];

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  metrics = sdkMetrics();
  tracing = sdkTracing();
});
afterAll(async () => {
  context.disable();
  await tracing.shutdown();
  await metrics.shutdown();
});
guardEachTest(async () => {
  for (const u of unsubscribe.splice(0)) u();
  await db?.end({ timeout: 5_000 });
  await proxy?.close();
});

/** Every message of every channel, serialised when published (the query context's outcome aside). */
function recordChannels(): { messages: string[]; outcomes: QueryChannelContext[] } {
  const messages: string[] = [];
  const outcomes: QueryChannelContext[] = [];
  const query = diagnostics.tracingChannel<unknown, QueryChannelContext>(
    DIAGNOSTICS_CHANNELS.query,
  );
  const onQuery = (event: string) => (ctx: QueryChannelContext) => {
    const { result: _result, error: _error, ...added } = ctx;
    messages.push(JSON.stringify({ event, ...added }));
    if (event === 'asyncEnd') outcomes.push(ctx);
  };
  const handlers = {
    start: onQuery('start'),
    end: onQuery('end'),
    asyncStart: onQuery('asyncStart'),
    asyncEnd: onQuery('asyncEnd'),
    error: onQuery('error'),
  };
  query.subscribe(handlers);
  unsubscribe.push(() => query.unsubscribe(handlers));
  for (const [key, name] of Object.entries(DIAGNOSTICS_CHANNELS)) {
    if (key === 'query') continue;
    const handler = (message: unknown) => messages.push(JSON.stringify({ name, message }));
    diagnostics.subscribe(name, handler);
    unsubscribe.push(() => diagnostics.unsubscribe(name, handler));
  }
  return { messages, outcomes };
}

describe('secrecy of telemetry', () => {
  it('carries no parameter value and no password in metrics, spans or channel messages', async () => {
    const { primary, replicas } = handle.cluster;
    const [reachable, refused] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const admin = primary.createPool({ max: 1 });
    await admin.query(`DROP ROLE IF EXISTS ${ROLE}`);
    await admin.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'`);
    await admin.query('CREATE TABLE IF NOT EXISTS secret_notes (id serial PRIMARY KEY, body text)');
    await admin.query(`GRANT ALL ON secret_notes, secret_notes_id_seq TO ${ROLE}`);
    await admin.end();
    await handle.cluster.waitForReplication();

    proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: refused.port } });
    const login = { user: ROLE, password: PASSWORD, database: 'postgres' };
    const channels = recordChannels();
    db = new ResilientPool({
      primary: new pg.Pool({
        connectionString: `postgres://${ROLE}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${primary.port}/postgres`,
        max: 2,
      }),
      replicas: [
        {
          pool: new pg.Pool({ ...login, host: '127.0.0.1', port: reachable.port, max: 2 }),
          name: reachable.name,
        },
        {
          pool: new pg.Pool({
            ...login,
            host: proxy.host,
            port: proxy.port,
            max: 2,
            connectionTimeoutMillis: 2_000,
          }),
          name: refused.name,
        },
      ],
      routing: { balancer: 'round-robin' },
      breaker: { consecutiveFailures: 2, resetTimeout: 60_000 },
      // Probes seldom enough that the reads, not a probe, find the refusing replica first.
      health: { intervalMs: 5_000, timeoutMs: 1_000 },
      metrics: { meterProvider: metrics.meterProvider },
      tracing: { tracerProvider: tracing.tracerProvider, queryText: true },
      logger: false,
    });
    const pool = db;
    pool.on('error', () => {});

    await pool.write('INSERT INTO secret_notes (body) VALUES ($1)', [param('insert')]);
    await pool.transaction(async (tx) => {
      await tx.query('INSERT INTO secret_notes (body) VALUES ($1)', [param('in-transaction')]);
    });
    await until('the rows on the replica', async () => {
      const { rows } = await pool.read<{ n: number }>(
        'SELECT count(*)::int AS n FROM secret_notes WHERE body LIKE $1',
        [`%${MARK}%`],
      );
      return rows[0]!.n >= 2;
    });
    // The replica behind the proxy stops taking connections: reads sent there move to the other
    // one (retry, fail-over), its circuit opens after two, and it is ejected.
    proxy.refuse();
    proxy.reset();
    for (let i = 0; i < 6; i++) {
      await pool.read('SELECT id FROM secret_notes WHERE body = $1', [param(`read-${i}`)]);
    }
    const echoed = await pool.read<{ v: string }>('SELECT $1::text AS v', [param('echo')]);
    expect(echoed.rows[0]?.v).toBe(param('echo'));
    const failure = await pool.write('SELECT $1::int', [param('bad')]).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((failure as Error).message).toContain(param('bad'));
    await until('the refused replica to be ejected', () =>
      pool.stats().endpoints.some((e) => e.name === refused.name && e.ejections > 0),
    );

    const collected = await metrics.collect();
    const spans = tracing.exporter.getFinishedSpans();
    // What was captured is substantial: the search below cannot pass by finding nothing.
    expect(collected.map((m) => m.descriptor.name)).toEqual(
      expect.arrayContaining([
        'db.client.operation.duration',
        'db.client.connection.count',
        'resilient_pool.retries',
        'resilient_pool.breaker.transitions',
      ]),
    );
    expect(spans.some((s) => s.events.some((e) => e.name === 'resilient_pool.retry'))).toBe(true);
    expect(spans.some((s) => s.status.code === 2)).toBe(true);
    expect(
      spans.some((s) => String(s.attributes['db.query.text']).includes('$1')),
      'the text is on the spans (opted in), placeholders and all',
    ).toBe(true);
    for (const name of ['start', 'asyncEnd', 'error']) {
      expect(channels.messages.some((m) => m.includes(`"event":"${name}"`))).toBe(true);
    }
    for (const name of ['retry', 'breaker', 'eject']) {
      expect(channels.messages.some((m) => m.includes(`"resilient-pool:${name}"`))).toBe(true);
    }

    const clusterPassword = decodeURIComponent(new URL(primary.url).password);
    const secrets = [MARK, PASSWORD, encodeURIComponent(PASSWORD), clusterPassword];
    const texts = {
      metrics: JSON.stringify(
        collected.map((m) => ({
          descriptor: m.descriptor,
          points: m.dataPoints.map((d) => ({ attributes: d.attributes, value: d.value })),
        })),
      ),
      spans: JSON.stringify(
        spans.map((s) => ({
          name: s.name,
          attributes: s.attributes,
          events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
          status: s.status,
          links: s.links,
        })),
      ),
      channels: JSON.stringify(channels.messages),
    };
    for (const [where, text] of Object.entries(texts)) {
      for (const secret of secrets) {
        expect(text.includes(secret), `a secret in the ${where}`).toBe(false);
      }
    }
    // The outcome on the query channel is the caller's own: the echoed rows, the error thrown.
    expect(channels.outcomes.some((ctx) => ctx.result === echoed)).toBe(true);
    expect(channels.outcomes.some((ctx) => ctx.error === failure)).toBe(true);
  }, 60_000);
});
