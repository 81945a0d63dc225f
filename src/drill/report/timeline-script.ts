/**
 * The report page's script: draws the timeline into svg#timeline from the report in
 * script#drill-data, redraws it when the window is resized, and shows a second's numbers under
 * the pointer. It is checked TypeScript, but it runs in the browser: page-script.ts puts the
 * compiled source of every function exported here into the page, which calls `drawTimeline`.
 *
 * Hence the rules of this file: one module (module loaders rewrite calls across modules, the
 * page has no modules); only function declarations, all exported (that is how page-script.ts
 * finds them); a function uses its parameters, the other functions here and browser built-ins,
 * no module-level value; type imports only. Report text goes in with `textContent` or as an
 * attribute value, never as markup.
 */
import type {
  Attrs,
  BandState,
  Frame,
  LaneSegment,
  PageData,
  PageDocument,
  PageElement,
  PageEndpointState,
  PageFault,
  PagePointer,
  PageSample,
  PageWindow,
  Palette,
  RoutingState,
  Scales,
  Segment,
  Timeline,
} from './timeline-types.js';

// ---- entry and one drawing

export function drawTimeline(doc: PageDocument, win: PageWindow): void {
  const tl = readTimeline(doc);
  if (!tl) return;
  drawFrame(tl);
  let pending = false;
  win.addEventListener('resize', () => {
    if (pending) return;
    pending = true;
    win.requestAnimationFrame(() => {
      pending = false;
      drawFrame(tl);
    });
  });
  doc.body.dataset.chart = 'drawn';
}

/**
 * One drawing at the chart's current width, replacing the previous one. The svg's data-*
 * attributes count what was drawn, for tests that look at the page in a browser.
 */
export function drawFrame(tl: Timeline): void {
  const W = Math.max(560, Math.round(tl.box.clientWidth || 960));
  const size = frameOf(tl, W);
  const old = tl.svg.ownerDocument.getElementById('timeline-plot');
  if (old) old.parentNode?.removeChild(old);
  tl.svg.setAttribute('viewBox', `0 0 ${W} ${size.H}`);
  tl.svg.setAttribute('width', String(W));
  tl.svg.setAttribute('height', String(size.H));
  const f: Frame = { ...size, g: el('g', { id: 'timeline-plot' }, tl.svg) };
  const defs = el('defs', null, f.g);
  const hatch = el(
    'pattern',
    {
      id: 'hatch-open',
      width: 6,
      height: 6,
      patternUnits: 'userSpaceOnUse',
      patternTransform: 'rotate(45)',
    },
    defs,
  );
  el('rect', { width: 2, height: 6, fill: '#7f1d1d', 'fill-opacity': 0.35 }, hatch);
  const s = scalesOf(tl.samples);
  drawGrid(tl, f, s);
  drawFaultWindows(tl, f);
  drawThroughput(tl, f, s);
  const points = Math.max(
    drawLatencyLine(tl, f, s, 'p50', 1.75),
    drawLatencyLine(tl, f, s, 'p99', 2),
  );
  const errorTicks = drawErrors(tl, f);
  drawBands(tl, f);
  const lanes = drawLanes(tl, f);
  if (!tl.samples.length) {
    const middle = { class: 'empty', 'text-anchor': 'middle' };
    txt(f.g, (f.x0 + f.x1) / 2, (f.yTop + f.yBot) / 2, 'no samples recorded', middle);
  }
  drawHover(tl, f);
  const counts = {
    points: tl.samples.length,
    'line-points': points,
    'fault-windows': tl.faults.length,
    bands: tl.endpoints.length,
    'error-ticks': errorTicks,
    'routing-bands': lanes,
    'pool-charts': lanes,
    width: W,
  };
  for (const [key, value] of Object.entries(counts)) {
    tl.svg.setAttribute(`data-${key}`, String(value));
  }
}

/** A cursor line that follows the pointer over the plot, and the tooltip beside it. */
export function drawHover(tl: Timeline, f: Frame): void {
  const cursor = el(
    'line',
    {
      x1: 0,
      x2: 0,
      y1: f.yTop,
      y2: f.gridBottom,
      stroke: '#111827',
      'stroke-opacity': 0.5,
      visibility: 'hidden',
      'pointer-events': 'none',
    },
    f.g,
  );
  const hit = el(
    'rect',
    {
      x: f.x0,
      y: f.yTop,
      width: f.x1 - f.x0,
      height: f.gridBottom - f.yTop,
      fill: 'transparent',
      'pointer-events': 'all',
    },
    f.g,
  );
  hit.addEventListener('mousemove', (ev) => showTip(tl, f, cursor, ev));
  hit.addEventListener('mouseleave', () => {
    cursor.setAttribute('visibility', 'hidden');
    if (tl.tip) tl.tip.hidden = true;
  });
}

/** Moves the cursor to the sample under the pointer and shows its numbers. */
export function showTip(tl: Timeline, f: Frame, cursor: PageElement, ev: PagePointer): void {
  const tip = tl.tip;
  if (!tl.samples.length || !tip) return;
  const rect = tl.svg.getBoundingClientRect();
  const x = (ev.clientX - rect.left) * (f.W / rect.width);
  const t = ((x - f.x0) / (f.x1 - f.x0)) * tl.tMax;
  let idx = tl.samples.length - 1;
  for (let i = 0; i < tl.windows.length; i++) {
    if (t <= tl.windows[i]![1]) {
      idx = i;
      break;
    }
  }
  const [from, to] = tl.windows[idx]!;
  const cx = String((sx(f, from) + sx(f, to)) / 2);
  cursor.setAttribute('x1', cx);
  cursor.setAttribute('x2', cx);
  cursor.setAttribute('visibility', 'visible');
  while (tip.firstChild) tip.removeChild(tip.firstChild);
  for (const line of tipLines(tl, tl.samples[idx]!, from, to)) {
    const d = tip.ownerDocument.createElement('div');
    d.textContent = line;
    tip.appendChild(d);
  }
  tip.hidden = false;
  const box = tl.box.getBoundingClientRect();
  let left = ev.clientX - box.left + 14;
  if (left + tip.offsetWidth > box.width) left = ev.clientX - box.left - tip.offsetWidth - 14;
  tip.style.left = `${Math.max(0, left)}px`;
  tip.style.top = `${Math.max(0, ev.clientY - box.top + 12)}px`;
}

export function tipLines(tl: Timeline, s: PageSample, from: number, to: number): string[] {
  const p50 = num(s.p50);
  const p99 = num(s.p99);
  const fault = s.fault ? `  ·  fault: ${s.fault}` : '';
  return [
    `${fmtT(from, tl.longTime)} – ${fmtT(to, tl.longTime)}${fault}`,
    `p50 ${p50 === null ? '—' : fmtMs(p50)}   p99 ${p99 === null ? '—' : fmtMs(p99)}`,
    `throughput ${fmtInt(num(s.opsPerSec) || 0)} ops/s`,
    `errors ${fmtInt(num(s.errors) || 0)}   retries ${fmtInt(num(s.retries) || 0)}`,
    tl.endpoints.map((n) => `${n} ${tl.colour.band[stateOf(s, n)].label}`).join('  ·  '),
    ...tl.lanes.map((n) => laneTip(tl, s, n)),
  ];
}

/** One endpoint's routing and connections in a sample, for the tooltip. */
export function laneTip(tl: Timeline, s: PageSample, name: string): string {
  const st = laneStateOf(s, name);
  if (!st) return `${name}: no data`;
  const node = name === 'primary' && typeof s.primaryNode === 'string' ? ` (${s.primaryNode})` : '';
  const lag = num(st.lagMs);
  return (
    `${name}${node}: ${tl.colour.routing[routingOf(s, name)].label}` +
    `  ·  ${fmtInt(num(st.used) || 0)} used, ${fmtInt(num(st.idle) || 0)} idle, ${fmtInt(num(st.pending) || 0)} pending` +
    (lag !== null && lag > 0 ? `  ·  lag ${fmtMs(lag)}` : '')
  );
}

// ---- layers, drawn in this order (later ones paint over earlier ones)

/** Latency gridlines (log, with 2 and 5 on a short range), throughput ticks, time ticks, axes. */
export function drawGrid(tl: Timeline, f: Frame, s: Scales): void {
  const grid = el('g', { class: 'grid' }, f.g);
  const axes = el('g', { class: 'axes' }, f.g);
  for (let d = s.lo; d <= s.hi * 1.0001; d *= 10) {
    const mult = s.decades <= 2 ? [1, 2, 5] : [1];
    for (const m of mult) {
      const v = d * m;
      if (v > s.hi * 1.0001) continue;
      const y = sy(f, s, v);
      el(
        'line',
        { x1: f.x0, x2: f.x1, y1: y, y2: y, stroke: m === 1 ? '#e5e7eb' : tl.colour.grid },
        grid,
      );
      txt(axes, f.x0 - 6, y + 4, fmtMs(v), { 'text-anchor': 'end' });
    }
  }
  const opsStep = niceStep(s.opsMax / 5);
  for (let o = 0; o <= s.opsMax + 1e-9; o += opsStep) {
    txt(axes, f.x1 + 6, so(f, s, o) + 4, fmtOps(o), { 'text-anchor': 'start' });
  }
  const cands = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  const maxTicks = Math.max(2, Math.floor((f.x1 - f.x0) / 70));
  let tStep = cands[cands.length - 1]! * 1000;
  for (const c of cands) {
    if (tl.tMax / (c * 1000) <= maxTicks) {
      tStep = c * 1000;
      break;
    }
  }
  for (let tt = 0; tt <= tl.tMax + 1e-6; tt += tStep) {
    const x = sx(f, tt);
    el('line', { x1: x, x2: x, y1: f.yTop, y2: f.gridBottom, stroke: tl.colour.grid }, grid);
    el('line', { x1: x, x2: x, y1: f.yBot, y2: f.yBot + 5, stroke: tl.colour.axis }, axes);
    txt(axes, x, f.yBot + 18, fmtT(tt, tl.longTime), { 'text-anchor': 'middle' });
  }
  el('line', { x1: f.x0, x2: f.x1, y1: f.yBot, y2: f.yBot, stroke: tl.colour.axis }, axes);
  el('line', { x1: f.x0, x2: f.x0, y1: f.yTop, y2: f.yBot, stroke: tl.colour.axis }, axes);
  el('line', { x1: f.x1, x2: f.x1, y1: f.yTop, y2: f.yBot, stroke: tl.colour.axis }, axes);
  const middle = (f.yTop + f.yBot) / 2;
  txt(axes, 0, 0, 'latency (ms, log scale)', {
    class: 'axis-title',
    'text-anchor': 'middle',
    transform: `translate(14 ${middle}) rotate(-90)`,
  });
  txt(axes, 0, 0, 'throughput (ops/s)', {
    class: 'axis-title',
    'text-anchor': 'middle',
    transform: `translate(${f.W - 12} ${middle}) rotate(90)`,
  });
}

/**
 * One shaded window per fault across plot, errors and bands, labelled above the plot in up to
 * three rows: a label goes to the first row where it does not overlap the previous one; when
 * none has room, it loses its target (the tooltip keeps it) and takes the row that ends first.
 */
export function drawFaultWindows(tl: Timeline, f: Frame): void {
  const faultG = el('g', { class: 'faults' }, f.g);
  const labelG = el('g', { class: 'fault-labels' }, f.g);
  const rowEnds = [-Infinity, -Infinity, -Infinity];
  for (const fw of tl.faults) {
    const a = sx(f, num(fw.start) || 0);
    const b = sx(f, num(fw.end) || 0);
    const shade = {
      x: a,
      y: f.yTop - 4,
      width: Math.max(1, b - a),
      height: f.gridBottom - f.yTop + 4,
      fill: tl.colour.fault,
      'fill-opacity': 0.1,
    };
    tooltipTitle(el('rect', shade, faultG), `${fw.name} (${fw.target}): ${fw.description}`);
    const dashed = { stroke: '#64748b', 'stroke-dasharray': '4 3' };
    el('line', { x1: a, x2: a, y1: f.yTop - 42, y2: f.gridBottom, ...dashed }, faultG);
    el('line', { x1: b, x2: b, y1: f.yTop - 4, y2: f.gridBottom, ...dashed }, faultG);
    const { label, target } = faultLabel(labelG, fw, a);
    const width = () => (label.getComputedTextLength ? label.getComputedTextLength() : 100);
    let row = rowEnds.findIndex((end) => a >= end + 8);
    if (row < 0) {
      label.removeChild(target);
      row = rowEnds.findIndex((end) => a >= end + 8);
      if (row < 0) row = rowEnds.indexOf(Math.min(...rowEnds));
    }
    // The target's dx is not always counted in the measured length: a little slack.
    rowEnds[row] = a + 16 + width();
    label.setAttribute('y', String(f.yTop - 32 + row * 12));
  }
}

/** The fault's name and, lighter, its target, starting at `a`; its y is set once placed. */
export function faultLabel(
  parent: PageElement,
  fw: PageFault,
  a: number,
): { label: PageElement; target: PageElement } {
  const label = txt(parent, a + 4, 0, '', { class: 'fault-label' });
  el('tspan', null, label).textContent = String(fw.name);
  const target = el('tspan', { class: 'fault-target', dx: 4 }, label);
  target.textContent = String(fw.target);
  tooltipTitle(label, fw.description);
  return { label, target };
}

/** One bar per sample: successful calls per second, on the right-hand axis. */
export function drawThroughput(tl: Timeline, f: Frame, s: Scales): void {
  const bars = el('g', { class: 'throughput' }, f.g);
  tl.samples.forEach((sample, i) => {
    const v = num(sample.opsPerSec);
    if (v === null) return;
    const a = sx(f, tl.windows[i]![0]);
    const b = sx(f, tl.windows[i]![1]);
    const gap = b - a > 4 ? 1 : 0;
    el(
      'rect',
      {
        x: a + gap / 2,
        y: so(f, s, v),
        width: Math.max(0.5, b - a - gap),
        height: f.yBot - so(f, s, v),
        fill: tl.colour.ops,
        stroke: tl.colour.opsEdge,
        'stroke-width': 0.5,
      },
      bars,
    );
  });
}

/**
 * The p50 or p99 line over a white halo, one point per sample at its window's middle; a sample
 * without calls breaks the line. Returns how many points it has.
 */
export function drawLatencyLine(
  tl: Timeline,
  f: Frame,
  s: Scales,
  key: 'p50' | 'p99',
  width: number,
): number {
  let d = '';
  let pen = false;
  let points = 0;
  tl.samples.forEach((sample, i) => {
    const v = num(sample[key]);
    if (v === null || v <= 0) {
      pen = false;
      return;
    }
    const x = (sx(f, tl.windows[i]![0]) + sx(f, tl.windows[i]![1])) / 2;
    const y = sy(f, s, v);
    d += `${pen ? 'L' : 'M'}${round(x, 2)} ${round(y, 2)}`;
    points++;
    pen = true;
  });
  if (!d) return points;
  const stroke = { 'stroke-linejoin': 'round', 'stroke-linecap': 'round' };
  el(
    'path',
    {
      d,
      fill: 'none',
      stroke: '#fff',
      'stroke-opacity': 0.85,
      'stroke-width': width + 2.5,
      ...stroke,
    },
    f.g,
  );
  el(
    'path',
    {
      d,
      fill: 'none',
      stroke: tl.colour[key],
      'stroke-width': width,
      ...stroke,
      class: `line-${key}`,
    },
    f.g,
  );
  return points;
}

/** The errors row: a tick per second with errors, its height growing with the square root. */
export function drawErrors(tl: Timeline, f: Frame): number {
  const mid = f.errY + f.rowH / 2 + 4;
  txt(f.g, f.x0 - 8, mid, 'errors/s', { class: 'row-label', 'text-anchor': 'end' });
  el(
    'rect',
    { x: f.x0, y: f.errY, width: f.x1 - f.x0, height: f.rowH, fill: '#fafafa', stroke: '#e5e7eb' },
    f.g,
  );
  const errMax = tl.samples.reduce((m, s) => Math.max(m, num(s.errors) || 0), 0);
  const errG = el('g', { class: 'errors' }, f.g);
  let ticks = 0;
  tl.samples.forEach((sample, i) => {
    const e = num(sample.errors) || 0;
    if (e <= 0) return;
    const [from, to] = tl.windows[i]!;
    const a = sx(f, from);
    const b = sx(f, to);
    const w = Math.max(2, (b - a) * 0.5);
    const h = Math.max(4, f.rowH * Math.sqrt(e / errMax));
    const attrs = {
      x: (a + b) / 2 - w / 2,
      y: f.errY + f.rowH - h,
      width: w,
      height: h,
      fill: tl.colour.err,
    };
    const retries = fmtInt(num(sample.retries) || 0);
    tooltipTitle(
      el('rect', attrs, errG),
      `${fmtT(to, tl.longTime)}: ${fmtInt(e)} errors surfaced, ${retries} retries`,
    );
    ticks++;
  });
  if (errMax > 0) txt(f.g, f.x1 + 6, mid, `max ${fmtInt(errMax)}`, { 'text-anchor': 'start' });
  else txt(f.g, f.x0 + 8, mid, 'no errors surfaced', { 'text-anchor': 'start' });
  return ticks;
}

// ---- breaker bands: a run of samples in one state is one labelled segment

export function drawBands(tl: Timeline, f: Frame): void {
  const bandsG = el('g', { class: 'bands' }, f.g);
  tl.endpoints.forEach((name, k) => {
    const y = f.bandY0 + k * (f.rowH + f.rowGap);
    txt(bandsG, f.x0 - 8, y + f.rowH / 2 + 4, name, { class: 'row-label', 'text-anchor': 'end' });
    const row = el('g', { class: 'band', 'data-endpoint': String(name) }, bandsG);
    if (!tl.samples.length) {
      const fill = tl.colour.band.unknown.fill;
      el('rect', { x: f.x0, y, width: f.x1 - f.x0, height: f.rowH, fill }, row);
      return;
    }
    let i = 0;
    while (i < tl.samples.length) {
      const st = stateOf(tl.samples[i], name);
      let j = i;
      while (j + 1 < tl.samples.length && stateOf(tl.samples[j + 1], name) === st) j++;
      drawSegment(tl, f, row, { name, st, y, from: tl.windows[i]![0], to: tl.windows[j]![1] });
      i = j + 1;
    }
  });
}

export function drawSegment(tl: Timeline, f: Frame, row: PageElement, seg: Segment): void {
  const { st, y } = seg;
  const band = tl.colour.band[st];
  const a = sx(f, seg.from);
  const b = sx(f, seg.to);
  const width = Math.max(0.5, b - a);
  const rect = el(
    'rect',
    { x: a, y, width, height: f.rowH, fill: band.fill, class: `seg-${st}` },
    row,
  );
  const span = `${fmtT(seg.from, tl.longTime)} – ${fmtT(seg.to, tl.longTime)}`;
  tooltipTitle(rect, `${seg.name}: ${band.label} ${span}`);
  if (st === 'open') {
    const hatch = {
      x: a,
      y,
      width,
      height: f.rowH,
      fill: 'url(#hatch-open)',
      'pointer-events': 'none',
    };
    el('rect', hatch, row);
  }
  const lab = txt(row, (a + b) / 2, y + f.rowH / 2 + 4, band.label, {
    class: `band-label on-${st}`,
    'text-anchor': 'middle',
    'pointer-events': 'none',
  });
  const lw = lab.getComputedTextLength ? lab.getComputedTextLength() : 40;
  if (lw + 6 > b - a) {
    // too narrow for the word: a short mark keeps the state readable without colour
    lab.textContent = st === 'open' ? '×' : st === 'half-open' ? '½' : '';
    if ((lab.getComputedTextLength ? lab.getComputedTextLength() : 8) + 2 > b - a) {
      lab.textContent = '';
    }
  }
}

// ---- endpoint lanes: what routing did with each endpoint, and its connections

/**
 * Per endpoint, a routing band (serving, avoided, lagging, ejected, down; on the primary's lane
 * also the node writes went to) over a small chart of its connections: used and idle stacked,
 * calls waiting for a connection on top, the pool's max dashed. Returns how many lanes it drew.
 */
export function drawLanes(tl: Timeline, f: Frame): number {
  if (!tl.lanes.length) return 0;
  const g = el('g', { class: 'lanes' }, f.g);
  txt(g, f.x0, f.laneY0 - 6, 'routing and connections per endpoint', {
    class: 'lane-title',
    'text-anchor': 'start',
  });
  tl.lanes.forEach((name, k) => {
    const y = f.laneY0 + k * f.laneH;
    const row = el('g', { class: 'lane', 'data-lane': name }, g);
    txt(row, f.x0 - 8, y + f.rowH / 2 + 4, name, { class: 'row-label', 'text-anchor': 'end' });
    let i = 0;
    while (i < tl.samples.length) {
      const key = laneKey(tl.samples[i], name);
      let j = i;
      while (j + 1 < tl.samples.length && laneKey(tl.samples[j + 1], name) === key) j++;
      const node = name === 'primary' ? tl.samples[i]!.primaryNode : undefined;
      drawLaneSegment(tl, f, row, {
        name,
        st: routingOf(tl.samples[i], name),
        node: typeof node === 'string' ? node : null,
        y,
        from: tl.windows[i]![0],
        to: tl.windows[j]![1],
      });
      i = j + 1;
    }
    drawPoolChart(tl, f, row, name, y + f.rowH + 4);
  });
  return tl.lanes.length;
}

/** What makes two samples one segment of a lane: the routing state, and the primary's node. */
export function laneKey(sample: PageSample | undefined, name: string): string {
  const node = name === 'primary' && sample ? String(sample.primaryNode ?? '') : '';
  return `${routingOf(sample, name)}|${node}`;
}

export function drawLaneSegment(tl: Timeline, f: Frame, row: PageElement, seg: LaneSegment): void {
  const swatch = tl.colour.routing[seg.st];
  const a = sx(f, seg.from);
  const b = sx(f, seg.to);
  const rect = el(
    'rect',
    {
      x: a,
      y: seg.y,
      width: Math.max(0.5, b - a),
      height: f.rowH,
      fill: swatch.fill,
      class: `route-${seg.st}`,
    },
    row,
  );
  const node = seg.node ? ` · writes to ${seg.node}` : '';
  const span = `${fmtT(seg.from, tl.longTime)} – ${fmtT(seg.to, tl.longTime)}`;
  tooltipTitle(rect, `${seg.name}: ${swatch.label}${node} ${span}`);
  const dark =
    seg.st === 'serving' || seg.st === 'down' || seg.st === 'ejected' || seg.st === 'lagging';
  const lab = txt(
    row,
    (a + b) / 2,
    seg.y + f.rowH / 2 + 4,
    `${swatch.label}${seg.node ? ` (${seg.node})` : ''}`,
    {
      class: `band-label ${dark ? 'on-dark' : 'on-light'}`,
      'text-anchor': 'middle',
      'pointer-events': 'none',
    },
  );
  const fits = (l: PageElement) =>
    (l.getComputedTextLength ? l.getComputedTextLength() : 40) + 6 <= b - a;
  if (!fits(lab)) lab.textContent = swatch.label;
  if (!fits(lab)) lab.textContent = '';
}

/** The connections chart of one lane, `y` its top. */
export function drawPoolChart(
  tl: Timeline,
  f: Frame,
  row: PageElement,
  name: string,
  y: number,
): void {
  const chart = el('g', { class: 'pool-chart', 'data-pool': name }, row);
  el(
    'rect',
    { x: f.x0, y, width: f.x1 - f.x0, height: f.poolH, fill: '#fafafa', stroke: '#e5e7eb' },
    chart,
  );
  // Connections on a scale of their own (up to the pool's max); calls waiting, which can be
  // many more, hang from the top on a square-root scale so that a few still show.
  let peak = 1;
  let poolMax: number | null = null;
  let peakPending = 0;
  for (const s of tl.samples) {
    const st = laneStateOf(s, name);
    if (!st) continue;
    const max = num(st.max);
    if (max !== null) poolMax = Math.max(poolMax ?? 0, max);
    peakPending = Math.max(peakPending, num(st.pending) || 0);
    peak = Math.max(peak, max || 0, (num(st.used) || 0) + (num(st.idle) || 0));
  }
  const h = (v: number) => (v / peak) * f.poolH;
  const bottom = y + f.poolH;
  tl.samples.forEach((s, i) => {
    const st = laneStateOf(s, name);
    if (!st) return;
    const a = sx(f, tl.windows[i]![0]);
    const b = sx(f, tl.windows[i]![1]);
    const gap = b - a > 4 ? 1 : 0;
    const width = Math.max(0.5, b - a - gap);
    const used = num(st.used) || 0;
    const idle = num(st.idle) || 0;
    const pending = num(st.pending) || 0;
    if (used > 0)
      el(
        'rect',
        { x: a + gap / 2, y: bottom - h(used), width, height: h(used), fill: tl.colour.used },
        chart,
      );
    if (idle > 0) {
      const top = bottom - h(used + idle);
      el('rect', { x: a + gap / 2, y: top, width, height: h(idle), fill: tl.colour.idle }, chart);
    }
    if (pending > 0) {
      const ph = Math.max(3, 0.6 * f.poolH * Math.sqrt(pending / peakPending));
      el(
        'rect',
        { x: a + gap / 2, y, width, height: ph, fill: tl.colour.pending, 'fill-opacity': 0.85 },
        chart,
      );
    }
  });
  if (poolMax !== null) {
    const my = bottom - h(poolMax);
    el(
      'line',
      { x1: f.x0, x2: f.x1, y1: my, y2: my, stroke: '#475569', 'stroke-dasharray': '3 3' },
      chart,
    );
  }
  txt(chart, f.x0 - 8, y + f.poolH / 2 + 4, 'conns', { class: 'lane-note', 'text-anchor': 'end' });
  const right = { class: 'lane-note', 'text-anchor': 'start' };
  txt(chart, f.x1 + 6, y + 12, `max ${poolMax === null ? '?' : fmtInt(poolMax)}`, right);
  if (peakPending > 0) txt(chart, f.x1 + 6, y + f.poolH - 3, `${fmtInt(peakPending)} wait`, right);
}

// ---- the report read back from the page, geometry and scales

export function palette(): Palette {
  return {
    band: {
      closed: { fill: '#16a34a', label: 'closed' },
      'half-open': { fill: '#f59e0b', label: 'half-open' },
      open: { fill: '#dc2626', label: 'open' },
      unknown: { fill: '#e5e7eb', label: 'no data' },
    },
    routing: {
      serving: { fill: '#0e7490', label: 'serving' },
      idle: { fill: '#cbd5e1', label: 'idle' },
      avoided: { fill: '#fbbf24', label: 'avoided' },
      lagging: { fill: '#a855f7', label: 'lagging' },
      ejected: { fill: '#ea580c', label: 'ejected' },
      down: { fill: '#7f1d1d', label: 'down' },
      unknown: { fill: '#e5e7eb', label: 'no data' },
    },
    used: '#1e40af',
    idle: '#93c5fd',
    pending: '#dc2626',
    p50: '#1d4ed8',
    p99: '#9333ea',
    ops: '#dbeafe',
    opsEdge: '#bfdbfe',
    grid: '#eef0f3',
    axis: '#9ca3af',
    err: '#dc2626',
    fault: '#475569',
  };
}

/** The time window of each sample: from the previous sample's end (or one period before). */
export function sampleWindows(samples: readonly PageSample[]): Array<readonly [number, number]> {
  const windows: Array<readonly [number, number]> = [];
  for (let i = 0; i < samples.length; i++) {
    const t = num(samples[i]!.t) || 0;
    const period =
      samples.length > 1 ? (num(samples[1]!.t) || 0) - (num(samples[0]!.t) || 0) : 1000;
    const prev = i > 0 ? num(samples[i - 1]!.t) || 0 : Math.max(0, t - period);
    windows.push([prev, t]);
  }
  return windows;
}

/** Reads the report from script#drill-data; null when the page lacks an element it needs. */
export function readTimeline(doc: PageDocument): Timeline | null {
  const dataEl = doc.getElementById('drill-data');
  const svg = doc.getElementById('timeline');
  const box = doc.getElementById('chart');
  const tip = doc.getElementById('chart-tip');
  if (!dataEl || !svg || !box) return null;
  const data = JSON.parse(dataEl.textContent || '{}') as PageData;
  const samples = (Array.isArray(data.samples) ? data.samples : []) as PageSample[];
  const faults = (Array.isArray(data.faults) ? data.faults : []) as PageFault[];
  const endpoints: unknown[] = Array.isArray(data.endpoints) ? data.endpoints : [];
  const windows = sampleWindows(samples);
  // A lane for each endpoint that some sample describes, in the endpoints' order.
  const lanes: string[] = [];
  for (const name of endpoints) {
    if (samples.some((sm) => laneStateOf(sm, name))) lanes.push(String(name));
  }
  let tMax = Math.max(
    num(data.durationMs) || 0,
    samples.length ? windows[windows.length - 1]![1] : 0,
    1,
  );
  for (const fault of faults) tMax = Math.max(tMax, num(fault.end) || 0);
  const longTime = tMax > 180000;
  return {
    svg,
    box,
    tip,
    samples,
    faults,
    endpoints,
    lanes,
    windows,
    tMax,
    longTime,
    colour: palette(),
  };
}

/** A breaker state the page knows, else 'unknown'. */
export function stateOf(sample: PageSample | undefined, name: unknown): BandState {
  const s = sample?.endpoints ? sample.endpoints[String(name)] : undefined;
  return s === 'closed' || s === 'half-open' || s === 'open' ? s : 'unknown';
}

/** An endpoint's routing and connections in a sample, when it is an object. */
export function laneStateOf(
  sample: PageSample | undefined,
  name: unknown,
): PageEndpointState | undefined {
  const states = sample?.endpointState;
  const st = states && typeof states === 'object' ? states[String(name)] : undefined;
  return st && typeof st === 'object' ? st : undefined;
}

/** A routing state the page knows, else 'unknown'. */
export function routingOf(sample: PageSample | undefined, name: unknown): RoutingState {
  const r = laneStateOf(sample, name)?.routing;
  return r === 'serving' ||
    r === 'idle' ||
    r === 'avoided' ||
    r === 'lagging' ||
    r === 'ejected' ||
    r === 'down'
    ? r
    : 'unknown';
}

/** The geometry of a chart `W` units wide (its height follows from the endpoints). */
export function frameOf(tl: Timeline, W: number): Omit<Frame, 'g'> {
  const plotH = W < 800 ? 200 : 250;
  const yTop = 56;
  const yBot = yTop + plotH;
  const rowH = 20;
  const rowGap = 6;
  const errY = yBot + 30;
  const bandY0 = errY + rowH + rowGap;
  const bandsEnd = bandY0 + tl.endpoints.length * (rowH + rowGap);
  const poolH = 34;
  const laneH = rowH + 4 + poolH + 2 * rowGap;
  const laneY0 = bandsEnd + (tl.lanes.length ? 18 : 0);
  const H = laneY0 + tl.lanes.length * laneH + 6;
  const x0 = 86;
  const x1 = W - 64;
  return {
    W,
    H,
    x0,
    x1,
    yTop,
    yBot,
    gridBottom: H - 6,
    rowH,
    rowGap,
    errY,
    bandY0,
    laneY0,
    laneH,
    poolH,
    tMax: tl.tMax,
  };
}

/** Latency axis from the decade below the fastest p50/p99 to the decade above the slowest. */
export function scalesOf(samples: readonly PageSample[]): Scales {
  const lat: number[] = [];
  for (const s of samples) {
    for (const raw of [s.p50, s.p99]) {
      const v = num(raw);
      if (v !== null && v > 0) lat.push(v);
    }
  }
  let lo = 1;
  let hi = 10;
  if (lat.length) {
    // A loop, not Math.min(...lat): a long drill has more samples than a call takes arguments.
    let latMin = Infinity;
    let latMax = 0;
    for (const v of lat) {
      latMin = Math.min(latMin, v);
      latMax = Math.max(latMax, v);
    }
    lo = 10 ** Math.floor(Math.log(latMin) / Math.LN10);
    hi = 10 ** Math.ceil(Math.log(latMax) / Math.LN10);
    if (hi <= lo) hi = lo * 10;
  }
  const decades = Math.round(Math.log(hi / lo) / Math.LN10);
  const opsPeak = samples.reduce((m, s) => Math.max(m, num(s.opsPerSec) || 0), 1);
  return { lo, hi, decades, opsMax: niceCeil(opsPeak * 1.05) };
}

/** x of time `t` (ms), clamped to the axis. */
export function sx(f: Frame, t: number): number {
  return f.x0 + (Math.max(0, Math.min(f.tMax, t)) / f.tMax) * (f.x1 - f.x0);
}

/** y of latency `v` (ms) on the log axis, clamped to it. */
export function sy(f: Frame, s: Scales, v: number): number {
  const c = Math.max(s.lo, Math.min(s.hi, v));
  return f.yBot - (Math.log(c / s.lo) / Math.log(s.hi / s.lo)) * (f.yBot - f.yTop);
}

/** y of throughput `v` (ops/s). */
export function so(f: Frame, s: Scales, v: number): number {
  return f.yBot - (Math.max(0, v) / s.opsMax) * (f.yBot - f.yTop);
}

// ---- SVG elements

/** Appends a new element to `parent`, in the parent's namespace (SVG), with these attributes. */
export function el(name: string, attrs: Attrs | null, parent: PageElement): PageElement {
  const e = parent.ownerDocument.createElementNS(parent.namespaceURI, name);
  if (attrs) for (const [key, value] of Object.entries(attrs)) e.setAttribute(key, String(value));
  parent.appendChild(e);
  return e;
}

/** Appends a text element at (x, y) holding `str` as text. */
export function txt(
  parent: PageElement,
  x: number,
  y: number,
  str: unknown,
  attrs?: Attrs,
): PageElement {
  const t = el('text', { ...attrs, x, y }, parent);
  t.textContent = String(str);
  return t;
}

/** Gives `parent` a hover title (an SVG `<title>` child). */
export function tooltipTitle(parent: PageElement, str: unknown): void {
  el('title', null, parent).textContent = String(str);
}

// ---- numbers from the report JSON; numbers and times for people

/** `v` when it is a finite number, else null: the report JSON is checked, never trusted. */
export function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function round(v: number, digits: number): number {
  const p = 10 ** digits;
  return Math.round(v * p) / p;
}

export function fmtMs(v: number): string {
  if (v >= 1000) return `${round(v / 1000, 2)} s`;
  return `${v < 10 ? round(v, 2) : Math.round(v)} ms`;
}

export function fmtOps(v: number): string {
  return v >= 1000 ? `${round(v / 1000, 1)}k` : String(round(v, 1));
}

export function fmtInt(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** Seconds since the start: '42 s', or '3:07' on a long drill. */
export function fmtT(t: number, long: boolean): string {
  const s = Math.round(t / 1000);
  if (!long) return `${s} s`;
  const m = Math.floor(s / 60);
  const r = s % 60;
  return `${m}:${r < 10 ? '0' : ''}${r}`;
}

/** The smallest round number (1, 1.2, 1.5, 2, ... times a power of ten) at least `v`. */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log(v) / Math.LN10);
  const steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
  for (const step of steps) if (step * p >= v) return step * p;
  return 10 * p;
}

/** An axis step of 1, 2, 2.5, 5 or 10 times a power of ten, at least `raw`. */
export function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log(raw) / Math.LN10);
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}
