import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it, type TestContext } from 'vitest';
import { renderHtmlReport } from '../../src/drill/report/html-report.js';
import type { DrillReport } from '../../src/drill/report-model.js';
import { sampleDrillReport } from '../support/sample-drill-report.js';

const HOSTILE = '</script><img src=x onerror=alert(1)>';
/** In the browser, a handler that would leave a trace in the DOM if it ever ran. */
const HOSTILE_DOM = `</script><img src=x onerror="document.body.dataset.pwned='1'"><!--`;

function dataBlock(html: string): string {
  const m = /<script type="application\/json" id="drill-data">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no script#drill-data in the page');
  return m[1]!;
}

function inlineScript(html: string): string {
  const m = /<script>([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no inline script in the page');
  return m[1]!;
}

/** The sample report with one fault, one endpoint and one invariant renamed to `name`. */
function hostileReport(name: string): DrillReport {
  const r = sampleDrillReport();
  const fault = r.faults[0]!.name;
  r.faults[0]!.name = name;
  r.faults[0]!.description = `${name} \u2028 & <!-- "quoted" 'single'`;
  r.summary[0]!.name = name;
  r.config.scenarios[0] = name;
  for (const s of r.samples) if (s.fault === fault) s.fault = name;
  const ep = r.endpoints[2]!;
  const evil = `<b>${name}</b>`;
  r.endpoints[2] = evil;
  for (const s of r.samples) {
    s.endpoints[evil] = s.endpoints[ep]!;
    delete s.endpoints[ep];
    if (s.endpointState) {
      s.endpointState[evil] = s.endpointState[ep]!;
      delete s.endpointState[ep];
    }
  }
  r.summary[0]!.errorsByCode = { [name]: 1 };
  r.summary[0]!.targets = [{ name, ok: false, detail: `${name} detail` }];
  r.faults[0]!.expected = `${name} expected`;
  r.invariants[1]!.name = name;
  r.invariants[1]!.detail = `${name} & more`;
  return r;
}

describe('renderHtmlReport (markup)', () => {
  const report = sampleDrillReport();
  const html = renderHtmlReport(report);

  it('is one self-contained page: no remote or external resource at all', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/\s(src|href|srcset|action|poster)\s*=/i);
    expect(html).not.toMatch(/@import|url\((?!#)/i);
    expect(html).not.toMatch(/<(link|iframe|object|embed|img|base)\b/i);
    expect(html).toContain("default-src 'none'");
  });

  it('has the accessible basics: lang, title, a labelled chart', () => {
    expect(html).toMatch(/<html lang="en">/);
    expect(html).toMatch(/<title>Drill report — PASS — 2025-01-15 10:42:07 UTC<\/title>/);
    expect(html).toMatch(
      /<svg id="timeline" role="img" aria-labelledby="timeline-title timeline-desc"/,
    );
    expect(html).toMatch(/<title id="timeline-title">Drill timeline/);
  });

  it('allows exactly its own inline script and style through the CSP hashes', () => {
    const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('base64');
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(html).toContain(`script-src 'sha256-${sha(inlineScript(html))}'`);
    expect(html).toContain(`style-src 'sha256-${sha(style)}'`);
  });

  it('embeds the report as JSON that round-trips exactly', () => {
    expect(JSON.parse(dataBlock(html))).toEqual(report);
  });

  it('shows the verdict, the fault rows (— for null) and the invariants', () => {
    expect(html).toContain('class="verdict pass"');
    expect(html).toContain('All 5 invariants held');
    expect(html).toContain(`<dd>${report.totals.ok.toLocaleString('en-US')}</dd>`);
    expect(html.match(/<tbody>[\s\S]*?<\/tbody>/)![0].match(/<tr>/g)).toHaveLength(4);
    expect(html).not.toContain('<td class="num">—</td>');

    const withNulls = sampleDrillReport();
    Object.assign(withNulls.summary[1]!, {
      timeToDetectMs: null,
      p99BaselineMs: null,
      p99DuringMs: null,
      timeToRecoverMs: null,
    });
    const row = /<tr>\s*<td><strong>replica-hang<\/strong>[\s\S]*?<\/tr>/.exec(
      renderHtmlReport(withNulls),
    )![0];
    expect(row.match(/<td class="num[^"]*">—<\/td>/g)).toHaveLength(4);
    expect(html.match(/class="badge ok"/g)).toHaveLength(5);

    const failed = renderHtmlReport(sampleDrillReport({ failedInvariant: true }));
    expect(failed).toContain('class="verdict fail"');
    expect(failed).toContain('1 of 5 invariants failed');
    expect(failed).toContain('Failed: <code>no-acknowledged-write-lost</code>');
    expect(failed.match(/class="badge bad"/g)).toHaveLength(1);
  });

  it('follows each fault row with its figures: expected errors, codes, bars met or missed', () => {
    const details = [...html.matchAll(/<tr class="fault-detail">([\s\S]*?)<\/tr>/g)].map(
      (m) => m[1]!,
    );
    expect(details).toHaveLength(report.summary.length);
    const failover = details[3]!;
    expect(failover).toContain(`Expected: ${report.faults[3]!.expected}`);
    expect(failover).toContain('<code>E_OUTCOME_UNKNOWN</code> × 3');
    expect(failover).toContain('3 writes in flight at the fault');
    expect(failover).toContain('Writes flowing 420 ms after the promotion; writes go to replica-1');
    expect(failover).toContain(
      'Connection attempts in the first second of recovery: primary 4 (pool max 16)',
    );
    expect(failover).toMatch(
      /<span class="target bad">missed<\/span> errors surfaced &lt;= writes in flight/,
    );
    expect(failover).toMatch(/<span class="target ok">met<\/span> writes flow to the new primary/);
    // the first row (replica-kill) met everything that applies to it
    expect(details[0]).not.toContain('missed');
  });

  it('explains detect, recover and the other columns on the page', () => {
    const howto = /<dl class="howto">([\s\S]*?)<\/dl>/.exec(html)![1]!;
    expect(howto).toContain('<dt>Time to detect</dt><dd>From the injection to the first sign');
    expect(howto).toContain('<dt>Time to recover</dt><dd>From the heal to the end of the first');
    expect(howto).toContain('<dt>Worst call</dt>');
    expect(html).toContain('Each call is counted in the second it <em>started</em>');
    expect(html).toContain('26 readers and 6 writers, independent');
    expect(html).toContain('Skipped: redis-loss: needs a Redis');
  });

  it('escapes hostile report text in markup and in the JSON block', () => {
    const hostile = hostileReport(HOSTILE);
    const page = renderHtmlReport(hostile);
    expect(page).not.toContain(HOSTILE);
    expect(page).not.toContain('<img');
    expect(page).not.toContain('<b>');
    expect(page).not.toContain('<!--');
    expect(dataBlock(page)).not.toContain('\u2028'); // a raw U+2028 in JSON breaks older JS parsers
    // only the page's own two script elements
    expect(page.match(/<\/script/gi)).toHaveLength(2);
    expect(page.match(/<script/gi)).toHaveLength(2);
    expect(page).toContain('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(page).toContain('&quot;quoted&quot; &#39;single&#39;');
    const json = dataBlock(page);
    expect(json).toContain('\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e');
    expect(json).toContain('\\u003c!--');
    expect(json).toContain('\\u2028');
    expect(JSON.parse(json)).toEqual(hostile);
  });

  it("draws with textContent and DOM calls only, and the script can't end its own element", () => {
    const script = inlineScript(html);
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    expect(script).toContain('createElementNS');
    expect(script).toContain('textContent');
    expect(script).not.toMatch(/<\/script|<!--/i);
  });

  it('survives an empty report', () => {
    const empty: DrillReport = {
      ...report,
      samples: [],
      faults: [],
      summary: [],
      invariants: [],
      endpoints: [],
      config: { ...report.config, scenarios: [] },
    };
    const page = renderHtmlReport(empty);
    expect(page).toContain('No faults were played.');
    expect(page).toContain('No invariants were checked');
    expect(JSON.parse(dataBlock(page))).toEqual(empty);
  });
});

// ---------------------------------------------------------------------------------------------
// In a real browser: Debian's chromium, headless.

const CHROMIUM_TIMEOUT_MS = 30_000;
const SKIP_NOTE =
  'chromium not found: apt-get install chromium (REQUIRE_CHROMIUM=1 makes this fail)';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function findChromium(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'chromium'))) return join(dir, 'chromium');
  }
  return isExecutable('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined;
}

const chromium = findChromium();
const work = mkdtempSync(join(tmpdir(), 'drill-html-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function needChromium(ctx: TestContext): string {
  if (chromium) return chromium;
  if (process.env.REQUIRE_CHROMIUM === '1') {
    throw new Error(`REQUIRE_CHROMIUM=1 but ${SKIP_NOTE}`);
  }
  console.warn(`skipping the browser test: ${SKIP_NOTE}`);
  return ctx.skip(SKIP_NOTE);
}

interface ChromiumRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs headless chromium on a file with a fresh profile; kills its whole process group after 30 s. */
function runChromium(bin: string, file: string, extra: string[]): Promise<ChromiumRun> {
  const profile = mkdtempSync(join(work, 'profile-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
    '--virtual-time-budget=5000',
    ...extra,
    pathToFileURL(file).href,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL'); // the launcher script, the browser and its children
      } catch {
        child.kill('SIGKILL');
      }
    }, CHROMIUM_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      rmSync(profile, { recursive: true, force: true });
      if (timedOut) {
        reject(
          new Error(`chromium killed after ${CHROMIUM_TIMEOUT_MS} ms\n${stderr.slice(-2000)}`),
        );
      } else {
        resolve({ code, stdout, stderr });
      }
    });
  });
}

function writePage(name: string, report: DrillReport): string {
  const file = join(work, `${name}.html`);
  writeFileSync(file, renderHtmlReport(report));
  return file;
}

function svgOf(dom: string): { open: string; body: string } {
  const start = dom.indexOf('<svg id="timeline"');
  expect(start, 'svg#timeline in the dumped DOM').toBeGreaterThanOrEqual(0);
  const end = dom.indexOf('</svg>', start);
  const body = dom.slice(start, end);
  return { open: body.slice(0, body.indexOf('>') + 1), body };
}

function attr(tag: string, name: string): string | undefined {
  return new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
}

describe('renderHtmlReport in headless chromium', () => {
  it('draws the timeline: points, fault windows, bands, error ticks', {
    timeout: 60_000,
  }, async (ctx) => {
    const bin = needChromium(ctx);
    const report = sampleDrillReport();
    const run = await runChromium(bin, writePage('sample', report), ['--dump-dom']);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const dom = run.stdout;
    expect(dom).toMatch(/<body[^>]*\sdata-chart="drawn"/);
    const { open, body } = svgOf(dom);
    expect(attr(open, 'data-points')).toBe(String(report.samples.length));
    expect(attr(open, 'data-fault-windows')).toBe(String(report.faults.length));
    expect(attr(open, 'data-bands')).toBe(String(report.endpoints.length));
    expect(Number(attr(open, 'data-error-ticks'))).toBe(
      report.samples.filter((s) => s.errors > 0).length,
    );
    expect(body.match(/<path\b/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(body.match(/<rect\b/g)?.length ?? 0).toBeGreaterThan(report.samples.length);
    expect(body).toContain('class="line-p50"');
    expect(body).toContain('class="line-p99"');
    for (const name of report.endpoints) expect(body).toContain(`data-endpoint="${name}"`);
    expect(attr(open, 'data-routing-bands')).toBe(String(report.endpoints.length));
    expect(attr(open, 'data-pool-charts')).toBe(String(report.endpoints.length));
    for (const name of report.endpoints) expect(body).toContain(`data-lane="${name}"`);
    expect(body).toMatch(/<title>primary: serving · writes to replica-1 /);
    expect(body).toMatch(/>ejected<\/text>/);
    for (const f of report.faults) expect(body).toContain(`>${f.name}</tspan>`);
    expect(body).toMatch(/>open<\/text>/);
    expect(body).toMatch(/>closed<\/text>/);
  });

  it('takes a non-blank screenshot', { timeout: 60_000 }, async (ctx) => {
    const bin = needChromium(ctx);
    const png = join(work, 'sample.png');
    const run = await runChromium(bin, writePage('shot', sampleDrillReport()), [
      `--screenshot=${png}`,
      '--window-size=1280,900',
    ]);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const bytes = readFileSync(png);
    expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(bytes.length).toBeGreaterThan(20_000);
  });

  it('shows hostile text as text: no element or handler gets in', {
    timeout: 60_000,
  }, async (ctx) => {
    const bin = needChromium(ctx);
    const report = hostileReport(HOSTILE_DOM);
    const run = await runChromium(bin, writePage('hostile', report), ['--dump-dom']);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const dom = run.stdout;
    expect(dom).toMatch(/<body[^>]*\sdata-chart="drawn"/);
    expect(dom).not.toMatch(/data-pwned/);
    expect(dom).not.toMatch(/<img\b/i);
    expect(dom).not.toMatch(/<b>/i);
    const { open, body } = svgOf(dom);
    expect(attr(open, 'data-fault-windows')).toBe(String(report.faults.length));
    expect(attr(open, 'data-bands')).toBe('3');
    // drawn with textContent: the label holds the text, serialised escaped
    expect(body).toContain('&lt;/script&gt;&lt;img src=x onerror="document.body.dataset.pwned=');
  });
});
