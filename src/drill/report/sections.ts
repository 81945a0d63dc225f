/**
 * The report page's sections as markup: the verdict header with the key facts, the chart's frame
 * (the page script draws into it), the per-fault table and the invariants. Every string from the
 * report goes through `esc`.
 */
import type { DrillReport, FaultSummary, FaultWindow } from '../report-model.js';
import { esc, formatStart, int, ms, seconds } from './format.js';

/** Pairs each summary row with the fault window it describes (same name and target, in order). */
function windowFor(
  row: FaultSummary,
  faults: FaultWindow[],
  used: Set<FaultWindow>,
): FaultWindow | undefined {
  const hit =
    faults.find((f) => !used.has(f) && f.name === row.name && f.target === row.target) ??
    faults.find((f) => !used.has(f) && f.name === row.name);
  if (hit) used.add(hit);
  return hit;
}

export function renderHeader(report: DrillReport): string {
  const failed = report.invariants.filter((i) => !i.ok);
  const total = report.invariants.length;
  const pass = failed.length === 0;
  let headline: string;
  if (total === 0) headline = 'No invariants were checked';
  else if (pass) headline = `All ${total} invariants held`;
  else headline = `${failed.length} of ${total} invariants failed`;
  const failedList = pass
    ? ''
    : `<p class="failed-list">Failed: ${failed.map((i) => `<code>${esc(i.name)}</code>`).join(', ')}</p>`;
  const calls = report.totals.ok + report.totals.errors;
  const errorRate = calls > 0 ? (report.totals.errors / calls) * 100 : 0;
  const cfg = report.config;
  const cluster = `1 primary + ${cfg.replicas} ${cfg.replicas === 1 ? 'replica' : 'replicas'}`;
  const facts: [string, string, string?][] = [
    ['Duration', seconds(report.durationMs)],
    ['Seed', String(report.seed)],
    ['Cluster', cluster, cfg.external ? 'external' : 'local, started by the drill'],
    ['Concurrency', int(cfg.concurrency), 'callers in parallel'],
    [
      'Calls ok',
      int(report.totals.ok),
      `${int(report.totals.ok / Math.max(1, report.durationMs / 1000))} ops/s on average`,
    ],
    [
      'Errors surfaced',
      int(report.totals.errors),
      `${errorRate < 0.01 && errorRate > 0 ? '<0.01' : errorRate.toFixed(2)} % of calls`,
    ],
    ['Retries', int(report.totals.retries)],
    ['Writes acknowledged', int(report.totals.writesAcknowledged)],
  ];
  return `<header class="verdict ${pass ? 'pass' : 'fail'}">
  <div class="mark" aria-hidden="true">${pass ? '✓' : '✗'}</div>
  <div>
    <p class="kicker">resilient-pool fail-over drill · ${pass ? 'PASS' : 'FAIL'} · started ${esc(formatStart(report.startedAt))}</p>
    <h1>${esc(headline)}</h1>
    ${failedList}
  </div>
</header>
<dl class="facts">
${facts
  .map(
    ([k, v, note]) =>
      `  <div><dt>${esc(k)}</dt><dd>${esc(v)}</dd>${note ? `<dd class="note">${esc(note)}</dd>` : ''}</div>`,
  )
  .join('\n')}
</dl>
<p class="scenarios">Scenarios: ${
    cfg.scenarios.length > 0
      ? cfg.scenarios.map((s) => `<code>${esc(s)}</code>`).join(' → ')
      : '<em>none</em>'
  }</p>`;
}

export function renderChart(report: DrillReport): string {
  const title = `Drill timeline over ${seconds(report.durationMs)}: latency, throughput, fault windows, errors and breaker state per endpoint`;
  const faults = report.faults
    .map((f) => `${f.name} on ${f.target} from ${seconds(f.start)} to ${seconds(f.end)}`)
    .join('; ');
  const desc = `${report.samples.length} one-second samples. Faults: ${faults || 'none'}. Endpoints: ${report.endpoints.join(', ')}.`;
  return `<section class="card" aria-labelledby="timeline-h">
  <h2 id="timeline-h">Timeline</h2>
  <div class="legend" aria-hidden="true">
    <span><i class="sw sw-p50"></i>p50 latency (ms, left)</span>
    <span><i class="sw sw-p99"></i>p99 latency (ms, left)</span>
    <span><i class="sw sw-ops"></i>throughput (ops/s, right)</span>
    <span><i class="sw sw-fault"></i>fault window</span>
    <span><i class="sw sw-err"></i>errors surfaced per second</span>
    <span class="sep">breaker:</span>
    <span><i class="sw sw-closed"></i>closed</span>
    <span><i class="sw sw-half"></i>half-open</span>
    <span><i class="sw sw-open"></i>open</span>
  </div>
  <div class="chart" id="chart">
    <svg id="timeline" role="img" aria-labelledby="timeline-title timeline-desc" viewBox="0 0 960 420" preserveAspectRatio="xMinYMin meet">
      <title id="timeline-title">${esc(title)}</title>
      <desc id="timeline-desc">${esc(desc)}</desc>
    </svg>
    <div class="tip" id="chart-tip" hidden></div>
    <noscript><p>The timeline is drawn by a script; the tables below hold the numbers.</p></noscript>
  </div>
</section>`;
}

export function renderSummary(report: DrillReport): string {
  const used = new Set<FaultWindow>();
  const rows = report.summary.map((row) => {
    const w = windowFor(row, report.faults, used);
    const worse =
      row.p99DuringMs !== null &&
      row.p99BaselineMs !== null &&
      row.p99DuringMs > 3 * row.p99BaselineMs;
    return `    <tr>
      <td><strong>${esc(row.name)}</strong>${w ? `<div class="desc">${esc(w.description)}</div>` : ''}</td>
      <td>${esc(row.target)}</td>
      <td class="num">${w ? `${esc(seconds(w.start))} – ${esc(seconds(w.end))}` : '—'}</td>
      <td class="num">${esc(ms(row.timeToDetectMs))}</td>
      <td class="num${row.errorsSurfaced > 0 ? ' bad' : ''}">${esc(int(row.errorsSurfaced))}</td>
      <td class="num">${esc(int(row.retries))}</td>
      <td class="num">${esc(ms(row.p99BaselineMs))}</td>
      <td class="num${worse ? ' warn' : ''}">${esc(ms(row.p99DuringMs))}</td>
      <td class="num${row.timeToRecoverMs === null ? ' bad' : ''}">${esc(ms(row.timeToRecoverMs))}</td>
    </tr>`;
  });
  const body =
    rows.length > 0 ? rows.join('\n') : '    <tr><td colspan="9">No faults were played.</td></tr>';
  return `<section class="card" aria-labelledby="faults-h">
  <h2 id="faults-h">Faults</h2>
  <div class="scroll">
  <table>
    <thead><tr>
      <th scope="col">Fault</th><th scope="col">Target</th><th scope="col" class="num">Window</th>
      <th scope="col" class="num">Time to detect</th><th scope="col" class="num">Errors surfaced</th>
      <th scope="col" class="num">Retries</th><th scope="col" class="num">p99 before</th>
      <th scope="col" class="num">p99 during</th><th scope="col" class="num">Time to recover</th>
    </tr></thead>
    <tbody>
${body}
    </tbody>
  </table>
  </div>
  <p class="note">Detect: injection to the pool noticing (breaker open or endpoint avoided). Recover: heal to throughput and breakers back to normal. — means not observed.</p>
</section>`;
}

export function renderInvariants(report: DrillReport): string {
  const items = report.invariants.map(
    (i) => `    <li class="${i.ok ? 'ok' : 'bad'}">
      <span class="badge ${i.ok ? 'ok' : 'bad'}"><span aria-hidden="true">${i.ok ? '✓' : '✗'}</span> ${i.ok ? 'PASS' : 'FAIL'}</span>
      <span><code>${esc(i.name)}</code><span class="detail">${esc(i.detail)}</span></span>
    </li>`,
  );
  return `<section class="card" aria-labelledby="inv-h">
  <h2 id="inv-h">Invariants</h2>
  <ul class="invariants">
${items.length > 0 ? items.join('\n') : '    <li>No invariants were checked.</li>'}
  </ul>
</section>`;
}
