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
    hit.dispatch('mouseleave');
    expect(page.tip.hidden).toBe(true);
  });
});
