/**
 * Plain-text tables: the first column left-aligned, and the last one too with `left` true, or the
 * columns at the indexes `left` lists; the others right-aligned.
 */

export function printTable(
  title: string,
  header: readonly string[],
  rows: readonly string[][],
  left: boolean | readonly number[] = false,
): void {
  const last = header.length - 1;
  const leftAt = new Set(left === true ? [last] : left === false ? [] : left);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 || leftAt.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
  if (rows.length === 0) console.log('(no results: see FAILED in the summary)');
}

export function note(text: string): void {
  console.log(`  ${text}`);
}
