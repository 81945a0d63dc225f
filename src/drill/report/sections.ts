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
    [
      'Concurrency',
      int(cfg.concurrency),
      cfg.readers !== undefined && cfg.writers !== undefined
        ? `${int(cfg.readers)} readers and ${int(cfg.writers)} writers, independent`
        : 'callers in parallel',
    ],
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
    ...(cfg.queue === undefined
      ? []
      : [
          [
            'Queue',
            `${int(cfg.queue.maxWaiting)} waiting at most`,
            `acquire timeout ${ms(cfg.queue.acquireTimeout)}; shed past ${cfg.queue.maxQueueDelayMs ? ms(cfg.queue.maxQueueDelayMs) : 'off'} of queue delay; adaptive limit ${cfg.queue.adaptiveLimit === false ? 'off' : cfg.queue.adaptiveLimit}`,
          ] as [string, string, string],
        ]),
    ['Writes acknowledged', int(report.totals.writesAcknowledged)],
    ...(cfg.redis === undefined
      ? []
      : [
          [
            'Redis cache',
            cfg.redis ? 'on' : 'off',
            cfg.redis ? 'half the reads' : 'no Redis answered',
          ] as [string, string, string],
        ]),
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
  }</p>${
    cfg.skipped && cfg.skipped.length > 0
      ? `\n<p class="scenarios">Skipped: ${cfg.skipped.map((s) => esc(s)).join('; ')}</p>`
      : ''
  }`;
}

export function renderChart(report: DrillReport): string {
  const title = `Drill timeline over ${seconds(report.durationMs)}: latency, throughput, fault windows, errors, breaker state, routing and connections per endpoint`;
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
    <span class="sep">routing:</span>
    <span><i class="sw sw-serving"></i>serving</span>
    <span><i class="sw sw-avoided"></i>avoided</span>
    <span><i class="sw sw-idle"></i>idle</span>
    <span><i class="sw sw-lagging"></i>lagging</span>
    <span><i class="sw sw-ejected"></i>ejected</span>
    <span><i class="sw sw-down"></i>down</span>
    <span class="sep">connections:</span>
    <span><i class="sw sw-used"></i>used</span>
    <span><i class="sw sw-idle-conn"></i>idle</span>
    <span><i class="sw sw-pending"></i>calls waiting</span>
  </div>
  <div class="chart" id="chart">
    <svg id="timeline" role="img" aria-labelledby="timeline-title timeline-desc" viewBox="0 0 960 420" preserveAspectRatio="xMinYMin meet">
      <title id="timeline-title">${esc(title)}</title>
      <desc id="timeline-desc">${esc(desc)}</desc>
    </svg>
    <div class="tip" id="chart-tip" hidden></div>
    <noscript><p>The timeline is drawn by a script; the tables below hold the numbers.</p></noscript>
  </div>
  <p class="note">Each call is counted in the second it <em>started</em>: a call that hangs through a fault counts in the fault, where its latency was caused. Routing says what the pool did with an endpoint: <em>serving</em> (it took calls), <em>avoided</em> (none, while others of its role did: the balancer routed around it or its circuit was open), <em>idle</em> (nobody asked), <em>lagging</em> (held back: replay lag past the bound), <em>ejected</em> (out of read routing), <em>down</em> (declared down: calls refused at once). The primary's lane names the node writes went to.</p>
</section>`;
}

/** The figures of one fault that the table's columns do not hold, as list items. */
function faultFacts(row: FaultSummary, w: FaultWindow | undefined): string[] {
  const items: string[] = [];
  if (w?.expected) items.push(`<li class="expected">Expected: ${esc(w.expected)}</li>`);
  const codes = Object.entries(row.errorsByCode ?? {});
  if (codes.length > 0) {
    items.push(
      `<li>Errors by code: ${codes.map(([c, n]) => `<code>${esc(c)}</code> × ${esc(int(n))}`).join(', ')}${row.readErrors ? ` (${esc(int(row.readErrors))} of them reads)` : ''}</li>`,
    );
  }
  const facts: string[] = [];
  if (row.writesInFlightAtFault !== undefined) {
    facts.push(`${int(row.writesInFlightAtFault)} writes in flight at the fault`);
  }
  if (row.readP99BeforeMs !== undefined || row.readP99DuringMs !== undefined) {
    facts.push(
      `read p99 ${ms(row.readP99BeforeMs ?? null)} before → ${ms(row.readP99DuringMs ?? null)} during`,
    );
  }
  if (row.worstCall) {
    const c = row.worstCall;
    facts.push(
      `worst call: a ${c.kind} started at ${seconds(c.startedAt)}, ${ms(c.latencyMs)}${c.ok ? '' : `, failed (${c.error ?? 'error'})`}`,
    );
  }
  if (facts.length > 0) items.push(`<li>${esc(facts.join('; '))}</li>`);
  if (row.writesFlowingAfterMs !== undefined) {
    items.push(
      `<li>${esc(`Writes flowing ${ms(row.writesFlowingAfterMs)} after the promotion; writes go to ${row.primaryNodeAfter ?? 'an unknown node'}`)}</li>`,
    );
  }
  if (row.lag) {
    const l = row.lag;
    items.push(
      `<li>${esc(`Lag up to ${ms(l.maxLagMs)} (bound ${ms(l.boundMs)}); held back ${ms(l.heldBackAfterMs)} after the pause; ${int(l.callsWhileHeldBack)} calls while held back`)}</li>`,
    );
  }
  if (row.overload) {
    const o = row.overload;
    items.push(
      `<li>${esc(`Overload: ${int(o.offeredPerSec)} calls/s offered, twice the capacity of ${int(o.capacityPerSec)}/s (${int(o.permits)} slots); ${int(o.admitted)} admitted, p99 ${ms(o.admittedP99Ms)} (unloaded ${ms(o.unloadedP99Ms)}); ${int(o.refused)} refused, p99 ${o.refusalP99Ms === null ? '—' : `${o.refusalP99Ms.toFixed(3)} ms`}; ${int(o.failed)} failed otherwise; ${int(o.notSent)} not sent (bound on calls in flight)`)}</li>`,
    );
    const limits = Object.entries(o.lowestLimit ?? {});
    const writeErrors = Object.entries(o.writeErrorsByCode ?? {});
    items.push(
      `<li>${esc(`${o.admittedPerSec === undefined ? '' : `${int(o.admittedPerSec)} admitted/s; `}${limits.length === 0 ? '' : `lowest gate limit ${limits.map(([e, n]) => `${e} ${int(n)}`).join(', ')}; `}writes failed: ${writeErrors.length === 0 ? 'none' : writeErrors.map(([c, n]) => `${c} × ${int(n)}`).join(', ')}`)}</li>`,
    );
  }
  const connects = Object.entries(row.connectsAfterRecovery ?? {});
  if (row.connectsAfterRecovery !== undefined) {
    items.push(
      `<li>${esc(`Connection attempts in the first second of recovery: ${connects.length === 0 ? 'none' : connects.map(([e, n]) => `${e} ${int(n)}`).join(', ')}${row.poolMax === undefined ? '' : ` (pool max ${int(row.poolMax)})`}`)}</li>`,
    );
  }
  for (const t of row.targets ?? []) {
    items.push(
      `<li><span class="target ${t.ok ? 'ok' : 'bad'}">${t.ok ? 'met' : 'missed'}</span> ${esc(t.name)}: ${esc(t.detail)}</li>`,
    );
  }
  return items;
}

export function renderSummary(report: DrillReport): string {
  const used = new Set<FaultWindow>();
  const rows = report.summary.map((row) => {
    const w = windowFor(row, report.faults, used);
    const worse =
      row.p99DuringMs !== null &&
      row.p99BaselineMs !== null &&
      row.p99DuringMs > 3 * row.p99BaselineMs;
    const facts = faultFacts(row, w);
    const detail =
      facts.length > 0
        ? `\n    <tr class="fault-detail"><td colspan="10"><ul>\n      ${facts.join('\n      ')}\n    </ul></td></tr>`
        : '';
    return `    <tr>
      <td><strong>${esc(row.name)}</strong>${w ? `<div class="desc">${esc(w.description)}</div>` : ''}</td>
      <td>${esc(row.target)}</td>
      <td class="num">${w ? `${esc(seconds(w.start))} – ${esc(seconds(w.end))}` : '—'}</td>
      <td class="num">${esc(ms(row.timeToDetectMs))}</td>
      <td class="num${row.errorsSurfaced > 0 ? ' bad' : ''}">${esc(int(row.errorsSurfaced))}</td>
      <td class="num">${esc(int(row.retries))}</td>
      <td class="num">${esc(ms(row.p99BaselineMs))}</td>
      <td class="num${worse ? ' warn' : ''}">${esc(ms(row.p99DuringMs))}</td>
      <td class="num">${row.worstCall === undefined ? '' : esc(ms(row.worstCall?.latencyMs ?? null))}</td>
      <td class="num${row.timeToRecoverMs === null ? ' bad' : ''}">${esc(ms(row.timeToRecoverMs))}</td>
    </tr>${detail}`;
  });
  const body =
    rows.length > 0 ? rows.join('\n') : '    <tr><td colspan="10">No faults were played.</td></tr>';
  return `<section class="card" aria-labelledby="faults-h">
  <h2 id="faults-h">Faults</h2>
  <div class="scroll">
  <table>
    <thead><tr>
      <th scope="col">Fault</th><th scope="col">Target</th><th scope="col" class="num">Window</th>
      <th scope="col" class="num">Time to detect</th><th scope="col" class="num">Errors surfaced</th>
      <th scope="col" class="num">Retries</th><th scope="col" class="num">p99 before</th>
      <th scope="col" class="num">p99 during</th><th scope="col" class="num">Worst call</th>
      <th scope="col" class="num">Time to recover</th>
    </tr></thead>
    <tbody>
${body}
    </tbody>
  </table>
  </div>
  <dl class="howto">
    <dt>Time to detect</dt><dd>From the injection to the first sign that the pool noticed: the target's circuit opened, it was declared down or ejected, it was shown held back (lagging, ejected, down), or the pool stopped sending it calls while callers kept asking (watched every 100 ms, quiet for 300 ms). For the overload, the first refusal. — means none was seen.</dd>
    <dt>Time to recover</dt><dd>From the heal to the end of the first one-second sample in which every circuit is closed (endpoints whose node is gone for good excepted) and throughput is back to 80 % of the baseline, looked for before the next fault. — means it did not recover in time.</dd>
    <dt>Errors surfaced</dt><dd>Calls of the workload that failed and overlapped the fault: running at the injection, or started before the recovery.</dd>
    <dt>p99 before / during</dt><dd>p99 of the successful calls started before the first fault (the baseline), and of those started between injection and heal.</dd>
    <dt>Worst call</dt><dd>The slowest call, failed or not, that was running at some moment of the fault window.</dd>
    <dt>met / missed</dt><dd>The bars of issue 12 that apply to the fault: goals for the library, not invariants (they do not fail the drill).</dd>
  </dl>
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
