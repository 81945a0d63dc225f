/**
 * The span tree of reads on a real cluster, through the real SDK: each read is one CLIENT span,
 * a child of the request's span. A read sent first to a replica whose connections are refused
 * (a ChaosProxy in front of it) and answered by the other replica is still one span, with two
 * attempts, the answering replica's server on it, and the retry and the move between replicas
 * as span events.
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResilientPool } from '../../src/index.js';
import { ChaosProxy, type ClusterNode } from '../../src/testing/index.js';
import { useCluster } from '../support/cluster.js';
import { guardEachTest } from '../support/guards.js';
import { type SdkTracing, sdkTracing } from '../support/otel-sdk.js';

const handle = useCluster({ replicas: 2 });
const contextManager = new AsyncLocalStorageContextManager();
let tracing: SdkTracing;
let db: ResilientPool | undefined;
let proxy: ChaosProxy | undefined;

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  tracing = sdkTracing();
});
afterAll(async () => {
  context.disable();
  await tracing.shutdown();
});
guardEachTest(async () => {
  await db?.end({ timeout: 5_000 });
  await proxy?.close();
});

/** Connection settings of a node without its host and port, for a pool behind a proxy. */
function credentialsOf(node: ClusterNode): pg.PoolConfig {
  const url = new URL(node.url);
  return {
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)),
  };
}

describe('call spans on the cluster', () => {
  it('a read failed over from one replica to another: one span, two attempts, events', async () => {
    const { primary, replicas } = handle.cluster;
    const [refused, answering] = replicas as [ClusterNode, ClusterNode];
    proxy = await ChaosProxy.start({ target: { host: '127.0.0.1', port: refused.port } });
    db = new ResilientPool({
      primary: primary.createPool({ max: 2 }),
      replicas: [
        {
          pool: new pg.Pool({
            ...credentialsOf(refused),
            host: proxy.host,
            port: proxy.port,
            max: 2,
            connectionTimeoutMillis: 2_000,
          }),
          name: refused.name,
        },
        { pool: answering.createPool({ max: 2 }), name: answering.name },
      ],
      // Both replicas stay in rotation: no probes, no circuit, so reads keep trying both.
      routing: { balancer: 'round-robin' },
      breaker: { enabled: false },
      health: { enabled: false },
      tracing: { tracerProvider: tracing.tracerProvider },
      logger: false,
    });
    const pool = db;
    proxy.refuse();
    const app = tracing.tracerProvider.getTracer('app');
    await app.startActiveSpan('GET /report', async (request) => {
      try {
        for (let i = 0; i < 4; i++) await pool.read('SELECT 1 AS one');
      } finally {
        request.end();
      }
    });

    const spans = tracing.exporter.getFinishedSpans();
    const [requestSpan] = spans.filter((s) => s.name === 'GET /report');
    const reads = spans.filter((s) => s.name === 'SELECT');
    // One span per call, each a CLIENT child of the request.
    expect(reads).toHaveLength(4);
    for (const span of reads) {
      expect(span.kind).toBe(2);
      expect(span.parentSpanContext?.spanId).toBe(requestSpan?.spanContext().spanId);
      expect(span.status.code).not.toBe(2);
      expect(span.attributes['resilient_pool.endpoint']).toBe(answering.name);
    }
    // Round-robin sent some of them to the refused replica first: those moved, in one span.
    const moved = reads.filter((s) => s.attributes['resilient_pool.attempts'] === 2);
    expect(moved.length).toBeGreaterThanOrEqual(1);
    for (const span of moved) {
      expect(span.attributes).toMatchObject({
        'db.system.name': 'postgresql',
        'db.operation.name': 'SELECT',
        'db.namespace': 'postgres',
        'server.address': '127.0.0.1',
        'server.port': answering.port,
        'resilient_pool.role': 'replica',
        'resilient_pool.call.role': 'read',
      });
      expect(span.events.map((e) => [e.name, e.attributes])).toEqual([
        [
          'resilient_pool.retry',
          expect.objectContaining({
            'resilient_pool.attempt': 2,
            'resilient_pool.endpoint': refused.name,
            'resilient_pool.retry.reason': 'connection',
            'resilient_pool.retry.delay_ms': 0,
          }),
        ],
        [
          'resilient_pool.failover',
          {
            'resilient_pool.attempt': 2,
            'resilient_pool.failover.from': refused.name,
            'resilient_pool.failover.to': answering.name,
          },
        ],
      ]);
    }
    // The others went to the answering replica at once.
    for (const span of reads.filter((s) => !moved.includes(s))) {
      expect(span.attributes['resilient_pool.attempts']).toBe(1);
      expect(span.events).toEqual([]);
    }
  });
});
