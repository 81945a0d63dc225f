/**
 * The report page's style sheet. The page allows it by its hash (Content-Security-Policy), so it
 * is inlined exactly as written here.
 */
export const CSS = `
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
.sw-serving { background: #0e7490; }
.sw-avoided { background: #fbbf24; }
.sw-idle { background: #cbd5e1; }
.sw-lagging { background: #a855f7; }
.sw-ejected { background: #ea580c; }
.sw-down { background: #7f1d1d; }
.sw-used { background: #1e40af; }
.sw-idle-conn { background: #93c5fd; }
.sw-pending { background: #dc2626; }
.chart { position: relative; margin-top: 4px; }
.chart svg { display: block; width: 100%; height: auto; overflow: visible; }
.chart text { font-size: 11px; fill: #4b5563; font-family: inherit; }
.chart .axis-title { font-size: 11px; fill: #374151; font-weight: 600; }
.chart .fault-label { font-size: 11.5px; fill: #1e293b; font-weight: 600; }
.chart .fault-target { font-weight: 400; fill: #475569; }
.chart .row-label { font-size: 12px; fill: #111827; font-weight: 600; }
.chart .band-label { font-size: 10.5px; font-weight: 700; letter-spacing: 0.02em; }
.chart .on-closed, .chart .on-open, .chart .on-dark { fill: #fff; }
.chart .on-light { fill: #111827; }
.chart .lane-title { font-size: 11.5px; fill: #374151; font-weight: 600; }
.chart .lane-note { font-size: 10.5px; fill: #6b7280; }
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
tr.fault-detail td { border-bottom: 2px solid var(--line); padding-top: 0; white-space: normal; }
.fault-detail ul { margin: 0; padding-left: 18px; color: #374151; font-size: 12.5px; }
.fault-detail li { margin: 1px 0; }
.fault-detail .expected { color: #4b5563; }
.target { font-weight: 600; }
.target.ok { color: #166534; }
.target.bad { color: #b91c1c; }
dl.howto { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 10px 0 0; font-size: 12.5px; }
dl.howto dt { font-weight: 600; }
dl.howto dd { margin: 0; color: #4b5563; }
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
