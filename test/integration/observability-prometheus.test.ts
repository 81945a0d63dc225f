/**
 * examples/prometheus.ts, scraped: its `/metrics` is fetched over HTTP on loopback after a little
 * load, and parsed as the Prometheus text exposition format. Every line is a comment (HELP, TYPE,
 * UNIT) or a valid sample; the pool's metrics are there, per endpoint, with the values the pool
 * reports in stats().
 */
import { describe, expect, it } from 'vitest';
import {
  type PrometheusExample,
  someLoad,
  startPrometheusExample,
} from '../../examples/prometheus.js';
import { useCluster } from '../support/cluster.js';
import { guardEachTest } from '../support/guards.js';

const handle = useCluster({ replicas: 1 });
let example: PrometheusExample | undefined;

guardEachTest(async () => {
  await example?.close();
  example = undefined;
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (-?(?:[0-9.]+(?:e[+-]?[0-9]+)?|NaN|\\+Inf|-Inf))(?: -?[0-9]+)?$`,
);
const COMMENT = new RegExp(
  `^# (?:HELP ${NAME} .*|TYPE ${NAME} (?:counter|gauge|histogram|summary|untyped)|UNIT ${NAME} .*)$`,
);

/** Parses the exposition text; throws on the first line that is neither a comment nor a sample. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '' || COMMENT.test(line)) continue;
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`line ${i + 1} is not valid exposition format: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = pair[2] as string;
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

describe('examples/prometheus.ts', () => {
  it('serves /metrics in the Prometheus text format, with the pool metrics per endpoint', async () => {
    example = await startPrometheusExample(handle.cluster, 0);
    await someLoad(example.db, 3);
    const response = await fetch(example.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const samples = parseExposition(await response.text());
    const names = new Set(samples.map((s) => s.name));
    for (const name of [
      'db_client_connection_count',
      'db_client_connection_max',
      'db_client_connection_pending_requests',
      'db_client_connection_wait_time_bucket',
      'db_client_connection_use_time_count',
      'db_client_operation_duration_bucket',
      'db_client_operation_duration_count',
      'db_client_operation_duration_sum',
      'resilient_pool_breaker_state',
      'resilient_pool_breaker_transitions_total',
      'resilient_pool_retries_total',
      'resilient_pool_rejections_total',
      'resilient_pool_failovers_total',
      'resilient_pool_retry_budget_exhausted_total',
      'resilient_pool_endpoint_down',
    ]) {
      expect(names, name).toContain(name);
    }
    const stats = example.db.stats();
    const replica = stats.endpoints.find((e) => e.role === 'replica');
    const sample = (name: string, labels: Record<string, string>) =>
      samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      );
    expect(
      sample('db_client_connection_max', { db_client_connection_pool_name: 'primary' })?.value,
    ).toBe(4);
    expect(
      sample('resilient_pool_breaker_state', {
        db_client_connection_pool_name: replica?.name ?? '',
        resilient_pool_breaker_state: 'closed',
      })?.value,
    ).toBe(1);
    // 3 rounds of 8 reads, each one operation-duration point.
    const reads = samples
      .filter(
        (s) =>
          s.name === 'db_client_operation_duration_count' &&
          s.labels.db_operation_name === 'SELECT',
      )
      .reduce((sum, s) => sum + s.value, 0);
    expect(reads).toBe(24);
    expect((await fetch(example.url.replace('/metrics', '/other'))).status).toBe(404);
  });
});
