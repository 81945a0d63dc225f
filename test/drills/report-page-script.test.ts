/**
 * The report page's script is built from the source of timeline-script.ts's functions: how it is
 * assembled, and that it runs on its own (no import, no module-level value it would miss) without
 * needing a browser. How it looks is tested in headless chromium (html-report.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { renderHtmlReport } from '../../src/drill/report/html-report.js';
import { assemblePageScript, PAGE_SCRIPT } from '../../src/drill/report/page-script.js';
import { runReportPage } from '../support/fake-page.js';
import { sampleDrillReport } from '../support/sample-drill-report.js';

describe('assemblePageScript', () => {
  const sources = ['function helper(x) { return x + 1; }', 'function main(d, w) { helper(1); }'];

  it('declares the functions in one strict scope and calls the entry with document and window', () => {
    const script = assemblePageScript(sources, 'main');
    expect(script).toContain("'use strict';");
    expect(script).toContain(sources[0]);
    expect(script.trim().endsWith('main(document, window);\n})();')).toBe(true);
    expect(script).not.toContain('__name');
  });

  it("gives esbuild keepNames' __name calls (tsx) an identity helper", () => {
    const named = ['function main(d, w) { const f = __name(() => 1, "f"); d.out = f(); }'];
    const script = assemblePageScript(named, 'main');
    const page = { out: 0 };
    new Function('document', 'window', script)(page, {});
    expect(page.out).toBe(1);
  });

  it('refuses what the page could not run', () => {
    expect(() => assemblePageScript(['(x) => x'], 'main')).toThrow(/not a function declaration/);
    expect(() => assemblePageScript([sources[0]!, sources[0]!], 'helper')).toThrow(/twice/);
    expect(() => assemblePageScript(sources, 'other')).toThrow(/no function other/);
    const closing = ["function main() { return '</script>'; }"];
    expect(() => assemblePageScript(closing, 'main')).toThrow(/<\/script/);
  });
});

describe('PAGE_SCRIPT on a minimal DOM', () => {
  const report = sampleDrillReport();
  const html = renderHtmlReport(report);

  it('is the page inline script', () => {
    expect(html).toContain(`<script>${PAGE_SCRIPT}</script>`);
  });

  it('draws the chart and redraws it on resize', () => {
    const page = runReportPage(html, 1200);
    expect(page.document.body.dataset.chart).toBe('drawn');
    const counts = () => Object.fromEntries(page.svg.attributes);
    expect(counts()).toMatchObject({
      'data-points': String(report.samples.length),
      'data-fault-windows': String(report.faults.length),
      'data-bands': String(report.endpoints.length),
      'data-routing-bands': String(report.endpoints.length),
      'data-pool-charts': String(report.endpoints.length),
      'data-width': '1200',
    });
    page.resize(640);
    expect(counts()['data-width']).toBe('640');
    expect(
      page.svg.children.filter((c) => c.attributes.get('id') === 'timeline-plot'),
    ).toHaveLength(1);
  });

  it('shows the second under the pointer in the tooltip, and hides it on leave', () => {
    const page = runReportPage(html, 960);
    const plot = page.svg.children[0]!;
    const hit = plot.children.at(-1)!;
    hit.dispatch('mousemove', { clientX: 100, clientY: 50 });
    expect(page.tip.hidden).toBe(false);
    const lines = page.tip.children.map((c) => c.textContent);
    expect(lines[0]).toMatch(/^\d+ s – \d+ s/);
    expect(lines[4]).toBe(report.endpoints.map((n) => `${n} closed`).join('  ·  '));
    // one line per endpoint lane: routing, connections, lag
    const second = /^(\d+) s/.exec(lines[0]!)![1]!;
    const s = report.samples.find((x) => x.t === Number(second) * 1000 + 1000)!;
    const st = s.endpointState!['replica-1']!;
    expect(lines[5]).toBe(
      'primary (primary): serving  ·  ' +
        `${s.endpointState!.primary!.used} used, ${s.endpointState!.primary!.idle} idle, ${s.endpointState!.primary!.pending} pending`,
    );
    expect(lines[6]).toMatch(
      new RegExp(`^replica-1: serving  ·  ${st.used} used, ${st.idle} idle, ${st.pending} pending`),
    );
    expect(lines).toHaveLength(5 + report.endpoints.length);
    hit.dispatch('mouseleave');
    expect(page.tip.hidden).toBe(true);
  });

  it("draws a lane per endpoint: routing segments, the primary's node, a connections chart", () => {
    const page = runReportPage(html, 1200);
    const all = [...page.svg.all()];
    const lanes = all.filter((e) => e.attributes.has('data-lane'));
    expect(lanes.map((e) => e.attributes.get('data-lane'))).toEqual(report.endpoints);
    const primary = lanes[0]!;
    const segments = [...primary.all()].filter((e) =>
      e.attributes.get('class')?.startsWith('route-'),
    );
    const titles = segments.map((e) => e.children[0]?.textContent ?? '');
    // before the failover writes go to the old primary, after it to replica-1
    expect(titles.some((t) => t.includes('writes to primary'))).toBe(true);
    expect(titles.at(-1)).toMatch(/^primary: serving · writes to replica-1/);
    expect(titles.some((t) => t.startsWith('primary: avoided'))).toBe(true);
    const replica2 = [...lanes[2]!.all()].map((e) => e.attributes.get('class'));
    expect(replica2).toContain('route-down');
    expect(replica2).toContain('route-ejected');
    // the connections chart: a bar per part per sample that has it, and the pool's max dashed
    const chart = [...primary.all()].find((e) => e.attributes.get('data-pool') === 'primary')!;
    const texts = [...chart.all()].filter((e) => e.tagName === 'text').map((e) => e.textContent);
    expect(texts).toContain('max 16');
    expect(texts.some((t) => /^\d+ wait$/.test(t))).toBe(true);
    expect([...chart.all()].filter((e) => e.tagName === 'line')).toHaveLength(1);
  });

  it('draws no lane for a report without routing data (an older drill)', () => {
    const old = sampleDrillReport();
    for (const s of old.samples) {
      delete s.endpointState;
      delete s.primaryNode;
    }
    const page = runReportPage(renderHtmlReport(old), 960);
    expect(page.document.body.dataset.chart).toBe('drawn');
    expect(page.svg.attributes.get('data-routing-bands')).toBe('0');
    expect(page.svg.attributes.get('data-bands')).toBe(String(old.endpoints.length));
  });
});
