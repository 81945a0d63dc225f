/**
 * The drill's HTML report: one self-contained page (inline CSS and JS, nothing fetched) with a
 * verdict header, a timeline chart drawn client-side from the report JSON embedded in the page,
 * the per-fault summary table and the invariants.
 *
 * Safety: every string from the report is HTML-escaped when it goes into markup; the embedded
 * JSON escapes `<`, `>`, `&`, U+2028 and U+2029 so that neither `</script>` nor `<!--` can end or
 * alter the data block; the script only ever inserts report text with `textContent`. A
 * Content-Security-Policy allows no network access at all and only this page's own script and
 * style (by hash), so even a mistake in escaping could not load or run anything else.
 */
import { createHash } from 'node:crypto';
import type { DrillReport, FaultSummary, FaultWindow } from './report-model.js';

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * JSON that is safe inside `<script type="application/json">`: `<`, `>` and `&` become `\u003c`
 * etc. (so no `</script>` or `<!--` can appear), as do the JS line terminators U+2028/U+2029.
 * JSON.parse turns the escapes back into the same characters.
 */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Milliseconds for people: '—' for null, '840 ms', '4.6 s'. */
function ms(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return '—';
  if (Math.abs(value) < 10) return `${Number(value.toFixed(1))} ms`;
  if (Math.abs(value) < 1000) return `${Math.round(value)} ms`;
  if (Math.abs(value) < 10_000) return `${Number((value / 1000).toFixed(2))} s`;
  return `${Number((value / 1000).toFixed(1))} s`;
}

function seconds(value: number): string {
  return `${Number((value / 1000).toFixed(1))} s`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64');
}

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

function formatStart(iso: string): string {
  return iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
}

function renderHeader(report: DrillReport): string {
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

function renderChart(report: DrillReport): string {
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

function renderSummary(report: DrillReport): string {
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

function renderInvariants(report: DrillReport): string {
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

const CSS = `
:root { color-scheme: light; --fg: #111827; --muted: #6b7280; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 16px 20px 32px; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.92em; }
.verdict { display: flex; align-items: center; gap: 16px; padding: 12px 18px; border-radius: 10px; color: #fff; }
.verdict.pass { background: #15803d; }
.verdict.fail { background: #b91c1c; }
.verdict .mark { font-size: 30px; font-weight: 700; line-height: 1; width: 44px; height: 44px; border-radius: 50%;
  background: rgba(255, 255, 255, 0.18); display: flex; align-items: center; justify-content: center; flex: none; }
.verdict .kicker { margin: 0; font-size: 12px; letter-spacing: 0.06em; text-transform: uppercase; opacity: 0.9; }
.verdict h1 { margin: 0; font-size: 21px; }
.verdict .failed-list { margin: 2px 0 0; }
.verdict code { background: rgba(255, 255, 255, 0.18); padding: 0 5px; border-radius: 4px; }
.facts { display: flex; flex-wrap: wrap; gap: 8px; margin: 12px 0 0; }
.facts div { flex: 1 1 auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 6px 12px; }
.facts dt { font-size: 11px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
.facts dd { margin: 0; font-size: 16px; font-weight: 600; font-variant-numeric: tabular-nums; white-space: nowrap; }
.facts dd.note { font-size: 11px; font-weight: 400; color: var(--muted); }
.scenarios { margin: 8px 2px 0; color: #374151; font-size: 13px; }
.scenarios code { background: #e5e7eb; padding: 1px 5px; border-radius: 4px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; margin-top: 14px; }
h2 { font-size: 15px; margin: 0 0 6px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; color: #374151; }
.legend .sep { color: var(--muted); margin-left: 8px; }
.sw { display: inline-block; width: 18px; height: 10px; margin-right: 6px; vertical-align: -1px; border-radius: 2px; }
.sw-p50 { height: 3px; vertical-align: 2px; background: #1d4ed8; }
.sw-p99 { height: 3px; vertical-align: 2px; background: #9333ea; }
.sw-ops { background: #dbeafe; border: 1px solid #bfdbfe; }
.sw-fault { background: rgba(71, 85, 105, 0.16); border-left: 2px dashed #64748b; border-right: 2px dashed #64748b; border-radius: 0; }
.sw-err { width: 3px; height: 12px; background: #dc2626; border-radius: 0; }
.sw-closed { background: #16a34a; }
.sw-half { background: #f59e0b; }
.sw-open { background: repeating-linear-gradient(135deg, #dc2626 0 4px, #b91c1c 4px 6px); }
.chart { position: relative; margin-top: 4px; }
.chart svg { display: block; width: 100%; height: auto; overflow: visible; }
.chart text { font-size: 11px; fill: #4b5563; font-family: inherit; }
.chart .axis-title { font-size: 11px; fill: #374151; font-weight: 600; }
.chart .fault-label { font-size: 11.5px; fill: #1e293b; font-weight: 600; }
.chart .fault-target { font-weight: 400; fill: #475569; }
.chart .row-label { font-size: 12px; fill: #111827; font-weight: 600; }
.chart .band-label { font-size: 10.5px; font-weight: 700; letter-spacing: 0.02em; }
.chart .on-closed, .chart .on-open { fill: #fff; }
.chart .on-half-open { fill: #111827; }
.chart .on-unknown { fill: #4b5563; }
.chart .empty { font-size: 14px; fill: var(--muted); }
.tip { position: absolute; pointer-events: none; background: rgba(17, 24, 39, 0.94); color: #f9fafb; font-size: 12px;
  padding: 6px 9px; border-radius: 6px; white-space: nowrap; z-index: 2; box-shadow: 0 2px 8px rgba(0, 0, 0, 0.2); }
.tip div:first-child { font-weight: 700; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 6px 10px; white-space: nowrap; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-size: 11px; text-transform: uppercase; letter-spacing: 0.03em; color: var(--muted); font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.bad { color: #b91c1c; font-weight: 600; }
td.warn { color: #b45309; font-weight: 600; }
.desc { color: var(--muted); font-size: 12px; white-space: normal; }
.note { color: var(--muted); font-size: 12px; margin: 6px 0 0; }
.invariants { list-style: none; padding: 0; margin: 0; }
.invariants li { display: flex; align-items: baseline; gap: 12px; padding: 6px 0; border-bottom: 1px solid var(--line); }
.invariants li:last-child { border-bottom: 0; }
.invariants .detail { display: block; color: #4b5563; font-size: 13px; }
.invariants li.bad code { color: #b91c1c; font-weight: 700; }
.badge { flex: none; font-weight: 700; font-size: 11px; padding: 2px 8px; border-radius: 999px; min-width: 62px; text-align: center; }
.badge.ok { background: #dcfce7; color: #166534; }
.badge.bad { background: #fee2e2; color: #991b1b; }
footer { color: var(--muted); font-size: 12px; margin-top: 14px; }
`;

/**
 * Draws the timeline into svg#timeline from script#drill-data. Plain ES2017, no template
 * literals (this is itself inside one), no innerHTML: report text goes in with textContent.
 */
const SCRIPT = `
(function () {
  'use strict';
  var dataEl = document.getElementById('drill-data');
  var svg = document.getElementById('timeline');
  var box = document.getElementById('chart');
  var tip = document.getElementById('chart-tip');
  if (!dataEl || !svg || !box) return;
  var data = JSON.parse(dataEl.textContent || '{}');
  var NS = svg.namespaceURI;
  var samples = Array.isArray(data.samples) ? data.samples : [];
  var faults = Array.isArray(data.faults) ? data.faults : [];
  var endpoints = Array.isArray(data.endpoints) ? data.endpoints : [];
  var BAND = {
    closed: { fill: '#16a34a', label: 'closed' },
    'half-open': { fill: '#f59e0b', label: 'half-open' },
    open: { fill: '#dc2626', label: 'open' },
    unknown: { fill: '#e5e7eb', label: 'no data' }
  };
  var C = { p50: '#1d4ed8', p99: '#9333ea', ops: '#dbeafe', opsEdge: '#bfdbfe', grid: '#eef0f3',
    axis: '#9ca3af', err: '#dc2626', fault: '#475569' };

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  function txt(parent, x, y, str, attrs) {
    var a = attrs || {};
    a.x = x; a.y = y;
    var t = el('text', a, parent);
    t.textContent = String(str);
    return t;
  }
  function tooltipTitle(parent, str) { el('title', null, parent).textContent = String(str); }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function round(v, d) { var p = Math.pow(10, d); return Math.round(v * p) / p; }
  function fmtMs(v) {
    if (v >= 1000) return round(v / 1000, 2) + ' s';
    return (v < 10 ? round(v, 2) : Math.round(v)) + ' ms';
  }
  function fmtOps(v) { return v >= 1000 ? round(v / 1000, 1) + 'k' : String(round(v, 1)); }
  function fmtInt(v) { return Math.round(v).toLocaleString('en-US'); }
  function fmtT(t, long) {
    var s = Math.round(t / 1000);
    if (!long) return s + ' s';
    var m = Math.floor(s / 60), r = s % 60;
    return m + ':' + (r < 10 ? '0' : '') + r;
  }
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log(v) / Math.LN10));
    var steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }
  function niceStep(raw) {
    var p = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  }

  // time windows of the samples: [from, to] in ms since start
  var windows = [];
  for (var i = 0; i < samples.length; i++) {
    var t = num(samples[i].t) || 0;
    var prev = i > 0 ? num(samples[i - 1].t) || 0 : Math.max(0, t - (samples.length > 1 ? (num(samples[1].t) || 0) - (num(samples[0].t) || 0) : 1000));
    windows.push([prev, t]);
  }
  var tMax = Math.max(num(data.durationMs) || 0, samples.length ? windows[windows.length - 1][1] : 0, 1);
  for (var f = 0; f < faults.length; f++) tMax = Math.max(tMax, num(faults[f].end) || 0);
  var longTime = tMax > 180000;

  function stateOf(sample, name) {
    var s = sample && sample.endpoints ? sample.endpoints[name] : undefined;
    return typeof s === 'string' && s !== 'unknown' && Object.prototype.hasOwnProperty.call(BAND, s) ? s : 'unknown';
  }

  var layout = null;
  function draw() {
    var W = Math.max(560, Math.round(box.clientWidth || 960));
    var M = { left: 86, right: 64, top: 44 };
    var plotH = W < 800 ? 200 : 250;
    var x0 = M.left, x1 = W - M.right, yTop = M.top, yBot = M.top + plotH;
    var rowH = 20, rowGap = 6;
    var errY = yBot + 30;
    var bandY0 = errY + rowH + rowGap;
    var H = bandY0 + endpoints.length * (rowH + rowGap) + 6;
    var sx = function (t) { return x0 + (Math.max(0, Math.min(tMax, t)) / tMax) * (x1 - x0); };

    var old = document.getElementById('timeline-plot');
    if (old) old.parentNode.removeChild(old);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    var g = el('g', { id: 'timeline-plot' }, svg);
    var defs = el('defs', null, g);
    var hatch = el('pattern', { id: 'hatch-open', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' }, defs);
    el('rect', { width: 2, height: 6, fill: '#7f1d1d', 'fill-opacity': 0.35 }, hatch);

    // ---- scales
    var lat = [];
    samples.forEach(function (s) {
      [s.p50, s.p99].forEach(function (v) { v = num(v); if (v !== null && v > 0) lat.push(v); });
    });
    var lo = 1, hi = 10;
    if (lat.length) {
      var latMin = lat.reduce(function (m, v) { return v < m ? v : m; }, Infinity);
      var latMax = lat.reduce(function (m, v) { return v > m ? v : m; }, 0);
      lo = Math.pow(10, Math.floor(Math.log(latMin) / Math.LN10));
      hi = Math.pow(10, Math.ceil(Math.log(latMax) / Math.LN10));
      if (hi <= lo) hi = lo * 10;
    }
    var decades = Math.round(Math.log(hi / lo) / Math.LN10);
    var sy = function (v) {
      var c = Math.max(lo, Math.min(hi, v));
      return yBot - (Math.log(c / lo) / Math.log(hi / lo)) * (yBot - yTop);
    };
    var opsMax = niceCeil(samples.reduce(function (m, s) { return Math.max(m, num(s.opsPerSec) || 0); }, 1) * 1.05);
    var so = function (v) { return yBot - (Math.max(0, v) / opsMax) * (yBot - yTop); };

    // ---- grid and axes
    var grid = el('g', { 'class': 'grid' }, g);
    var axes = el('g', { 'class': 'axes' }, g);
    for (var d = lo; d <= hi * 1.0001; d *= 10) {
      var mult = decades <= 2 ? [1, 2, 5] : [1];
      mult.forEach(function (m) {
        var v = d * m;
        if (v > hi * 1.0001) return;
        var y = sy(v);
        el('line', { x1: x0, x2: x1, y1: y, y2: y, stroke: m === 1 ? '#e5e7eb' : C.grid }, grid);
        txt(axes, x0 - 6, y + 4, fmtMs(v), { 'text-anchor': 'end' });
      });
    }
    var opsStep = niceStep(opsMax / 5);
    for (var o = 0; o <= opsMax + 1e-9; o += opsStep) {
      txt(axes, x1 + 6, so(o) + 4, fmtOps(o), { 'text-anchor': 'start' });
    }
    var cands = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
    var maxTicks = Math.max(2, Math.floor((x1 - x0) / 70));
    var tStep = cands[cands.length - 1] * 1000;
    for (var c = 0; c < cands.length; c++) if (tMax / (cands[c] * 1000) <= maxTicks) { tStep = cands[c] * 1000; break; }
    var gridBottom = H - 6;
    for (var tt = 0; tt <= tMax + 1e-6; tt += tStep) {
      var x = sx(tt);
      el('line', { x1: x, x2: x, y1: yTop, y2: gridBottom, stroke: C.grid }, grid);
      el('line', { x1: x, x2: x, y1: yBot, y2: yBot + 5, stroke: C.axis }, axes);
      txt(axes, x, yBot + 18, fmtT(tt, longTime), { 'text-anchor': 'middle' });
    }
    el('line', { x1: x0, x2: x1, y1: yBot, y2: yBot, stroke: C.axis }, axes);
    el('line', { x1: x0, x2: x0, y1: yTop, y2: yBot, stroke: C.axis }, axes);
    el('line', { x1: x1, x2: x1, y1: yTop, y2: yBot, stroke: C.axis }, axes);
    txt(axes, 0, 0, 'latency (ms, log scale)', { 'class': 'axis-title', 'text-anchor': 'middle',
      transform: 'translate(14 ' + (yTop + yBot) / 2 + ') rotate(-90)' });
    txt(axes, 0, 0, 'throughput (ops/s)', { 'class': 'axis-title', 'text-anchor': 'middle',
      transform: 'translate(' + (W - 12) + ' ' + (yTop + yBot) / 2 + ') rotate(90)' });

    // ---- fault windows (behind the data, across plot, errors and bands)
    var faultG = el('g', { 'class': 'faults' }, g);
    var labelG = el('g', { 'class': 'fault-labels' }, g);
    var rowEnds = [-Infinity, -Infinity];
    faults.forEach(function (fw) {
      var a = sx(num(fw.start) || 0), b = sx(num(fw.end) || 0);
      var w = Math.max(1, b - a);
      var r = el('rect', { x: a, y: yTop - 4, width: w, height: gridBottom - yTop + 4, fill: C.fault, 'fill-opacity': 0.1 }, faultG);
      tooltipTitle(r, fw.name + ' (' + fw.target + '): ' + fw.description);
      el('line', { x1: a, x2: a, y1: yTop - 30, y2: gridBottom, stroke: '#64748b', 'stroke-dasharray': '4 3' }, faultG);
      el('line', { x1: b, x2: b, y1: yTop - 4, y2: gridBottom, stroke: '#64748b', 'stroke-dasharray': '4 3' }, faultG);
      var t = txt(labelG, a + 4, 0, '', { 'class': 'fault-label' });
      el('tspan', null, t).textContent = String(fw.name);
      var tg = el('tspan', { 'class': 'fault-target', dx: 4 }, t);
      tg.textContent = String(fw.target);
      tooltipTitle(t, fw.description);
      var len = t.getComputedTextLength ? t.getComputedTextLength() : 100;
      var row = a >= rowEnds[0] + 8 ? 0 : a >= rowEnds[1] + 8 ? 1 : 0;
      rowEnds[row] = a + 4 + len;
      t.setAttribute('y', row === 0 ? yTop - 20 : yTop - 8);
    });

    // ---- throughput bars
    var bars = el('g', { 'class': 'throughput' }, g);
    samples.forEach(function (s, i) {
      var v = num(s.opsPerSec);
      if (v === null) return;
      var a = sx(windows[i][0]), b = sx(windows[i][1]);
      var gap = b - a > 4 ? 1 : 0;
      el('rect', { x: a + gap / 2, y: so(v), width: Math.max(0.5, b - a - gap), height: yBot - so(v), fill: C.ops, stroke: C.opsEdge, 'stroke-width': 0.5 }, bars);
    });

    // ---- latency lines (a null breaks the line)
    function line(key, color, width) {
      var dstr = '', pen = false, pts = [];
      samples.forEach(function (s, i) {
        var v = num(s[key]);
        if (v === null || v <= 0) { pen = false; return; }
        var x = (sx(windows[i][0]) + sx(windows[i][1])) / 2, y = sy(v);
        dstr += (pen ? 'L' : 'M') + round(x, 2) + ' ' + round(y, 2);
        pts.push([x, y]);
        pen = true;
      });
      if (dstr) el('path', { d: dstr, fill: 'none', stroke: '#fff', 'stroke-opacity': 0.85, 'stroke-width': width + 2.5, 'stroke-linejoin': 'round', 'stroke-linecap': 'round' }, g);
      if (dstr) el('path', { d: dstr, fill: 'none', stroke: color, 'stroke-width': width, 'stroke-linejoin': 'round', 'stroke-linecap': 'round', 'class': 'line-' + key }, g);
      return pts.length;
    }
    var points = Math.max(line('p50', C.p50, 1.75), line('p99', C.p99, 2));

    // ---- errors surfaced per second
    txt(g, x0 - 8, errY + rowH / 2 + 4, 'errors/s', { 'class': 'row-label', 'text-anchor': 'end' });
    el('rect', { x: x0, y: errY, width: x1 - x0, height: rowH, fill: '#fafafa', stroke: '#e5e7eb' }, g);
    var errMax = samples.reduce(function (m, s) { return Math.max(m, num(s.errors) || 0); }, 0);
    var errG = el('g', { 'class': 'errors' }, g);
    var errTicks = 0;
    samples.forEach(function (s, i) {
      var e = num(s.errors) || 0;
      if (e <= 0) return;
      var a = sx(windows[i][0]), b = sx(windows[i][1]);
      var w = Math.max(2, (b - a) * 0.5);
      var h = Math.max(4, rowH * Math.sqrt(e / errMax));
      var r = el('rect', { x: (a + b) / 2 - w / 2, y: errY + rowH - h, width: w, height: h, fill: C.err }, errG);
      tooltipTitle(r, fmtT(windows[i][1], longTime) + ': ' + fmtInt(e) + ' errors surfaced, ' + fmtInt(num(s.retries) || 0) + ' retries');
      errTicks++;
    });
    if (errMax > 0) txt(g, x1 + 6, errY + rowH / 2 + 4, 'max ' + fmtInt(errMax), { 'text-anchor': 'start' });
    else txt(g, x0 + 8, errY + rowH / 2 + 4, 'no errors surfaced', { 'text-anchor': 'start' });

    // ---- breaker bands, one per endpoint
    var bandsG = el('g', { 'class': 'bands' }, g);
    endpoints.forEach(function (name, k) {
      var y = bandY0 + k * (rowH + rowGap);
      txt(bandsG, x0 - 8, y + rowH / 2 + 4, name, { 'class': 'row-label', 'text-anchor': 'end' });
      var row = el('g', { 'class': 'band', 'data-endpoint': name }, bandsG);
      if (!samples.length) {
        el('rect', { x: x0, y: y, width: x1 - x0, height: rowH, fill: BAND.unknown.fill }, row);
        return;
      }
      var i = 0;
      while (i < samples.length) {
        var st = stateOf(samples[i], name), j = i;
        while (j + 1 < samples.length && stateOf(samples[j + 1], name) === st) j++;
        var a = sx(windows[i][0]), b = sx(windows[j][1]);
        var seg = el('rect', { x: a, y: y, width: Math.max(0.5, b - a), height: rowH, fill: BAND[st].fill, 'class': 'seg-' + st }, row);
        tooltipTitle(seg, name + ': ' + BAND[st].label + ' ' + fmtT(windows[i][0], longTime) + ' – ' + fmtT(windows[j][1], longTime));
        if (st === 'open') el('rect', { x: a, y: y, width: Math.max(0.5, b - a), height: rowH, fill: 'url(#hatch-open)', 'pointer-events': 'none' }, row);
        var lab = txt(row, (a + b) / 2, y + rowH / 2 + 4, BAND[st].label, { 'class': 'band-label on-' + st, 'text-anchor': 'middle', 'pointer-events': 'none' });
        var lw = lab.getComputedTextLength ? lab.getComputedTextLength() : 40;
        if (lw + 6 > b - a) {
          // too narrow for the word: a short mark keeps the state readable without colour
          lab.textContent = st === 'open' ? '×' : st === 'half-open' ? '½' : '';
          if ((lab.getComputedTextLength ? lab.getComputedTextLength() : 8) + 2 > b - a) lab.textContent = '';
        }
        i = j + 1;
      }
    });

    if (!samples.length) {
      txt(g, (x0 + x1) / 2, (yTop + yBot) / 2, 'no samples recorded', { 'class': 'empty', 'text-anchor': 'middle' });
    }

    // ---- hover: a cursor line and a tooltip with the second's numbers
    var cursor = el('line', { x1: 0, x2: 0, y1: yTop, y2: gridBottom, stroke: '#111827', 'stroke-opacity': 0.5, visibility: 'hidden', 'pointer-events': 'none' }, g);
    var hit = el('rect', { x: x0, y: yTop, width: x1 - x0, height: gridBottom - yTop, fill: 'transparent', 'pointer-events': 'all' }, g);
    layout = { W: W, x0: x0, x1: x1, sx: sx, cursor: cursor };
    hit.addEventListener('mousemove', onMove);
    hit.addEventListener('mouseleave', function () { cursor.setAttribute('visibility', 'hidden'); if (tip) tip.hidden = true; });

    svg.setAttribute('data-points', String(samples.length));
    svg.setAttribute('data-line-points', String(points));
    svg.setAttribute('data-fault-windows', String(faults.length));
    svg.setAttribute('data-bands', String(endpoints.length));
    svg.setAttribute('data-error-ticks', String(errTicks));
    svg.setAttribute('data-width', String(W));
  }

  function onMove(ev) {
    if (!layout || !samples.length || !tip) return;
    var rect = svg.getBoundingClientRect();
    var scale = layout.W / rect.width;
    var x = (ev.clientX - rect.left) * scale;
    var t = ((x - layout.x0) / (layout.x1 - layout.x0)) * tMax;
    var idx = samples.length - 1;
    for (var i = 0; i < windows.length; i++) if (t <= windows[i][1]) { idx = i; break; }
    var s = samples[idx];
    var cx = (layout.sx(windows[idx][0]) + layout.sx(windows[idx][1])) / 2;
    layout.cursor.setAttribute('x1', cx);
    layout.cursor.setAttribute('x2', cx);
    layout.cursor.setAttribute('visibility', 'visible');
    var p50 = num(s.p50), p99 = num(s.p99);
    var lines = [
      fmtT(windows[idx][0], longTime) + ' – ' + fmtT(windows[idx][1], longTime) + (s.fault ? '  ·  fault: ' + s.fault : ''),
      'p50 ' + (p50 === null ? '—' : fmtMs(p50)) + '   p99 ' + (p99 === null ? '—' : fmtMs(p99)),
      'throughput ' + fmtInt(num(s.opsPerSec) || 0) + ' ops/s',
      'errors ' + fmtInt(num(s.errors) || 0) + '   retries ' + fmtInt(num(s.retries) || 0),
      endpoints.map(function (n) { return n + ' ' + BAND[stateOf(s, n)].label; }).join('  ·  ')
    ];
    while (tip.firstChild) tip.removeChild(tip.firstChild);
    lines.forEach(function (l) { var d = document.createElement('div'); d.textContent = l; tip.appendChild(d); });
    tip.hidden = false;
    var boxRect = box.getBoundingClientRect();
    var left = ev.clientX - boxRect.left + 14;
    if (left + tip.offsetWidth > boxRect.width) left = ev.clientX - boxRect.left - tip.offsetWidth - 14;
    tip.style.left = Math.max(0, left) + 'px';
    tip.style.top = Math.max(0, ev.clientY - boxRect.top + 12) + 'px';
  }

  draw();
  var pending = false;
  window.addEventListener('resize', function () {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw(); });
  });
  document.body.dataset.chart = 'drawn';
})();
`;

/** Renders the drill report as one self-contained HTML page (no external resources). */
export function renderHtmlReport(report: DrillReport): string {
  const failed = report.invariants.filter((i) => !i.ok).length;
  const verdict = failed === 0 ? 'PASS' : 'FAIL';
  const started = formatStart(report.startedAt);
  const csp = [
    "default-src 'none'",
    `script-src 'sha256-${sha256(SCRIPT)}'`,
    `style-src 'sha256-${sha256(CSS)}'`,
    "img-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; '); // our own constants only: base64, quotes and semicolons, nothing to escape
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<title>${esc(`Drill report — ${verdict} — ${started}`)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${renderHeader(report)}
${renderChart(report)}
${renderSummary(report)}
${renderInvariants(report)}
<footer>Generated by <code>resilient-pool drill</code>. The report data is embedded in this page (<code>script#drill-data</code>); nothing is loaded from the network.</footer>
</main>
<script type="application/json" id="drill-data">${jsonForScript(report)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
