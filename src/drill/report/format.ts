/**
 * Text for the report page: HTML escaping, JSON safe inside a script element, and numbers and
 * times for people.
 */

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * JSON that is safe inside `<script type="application/json">`: `<`, `>` and `&` become `\u003c`
 * etc. (so no `</script>` or `<!--` can appear), as do the JS line terminators U+2028/U+2029.
 * JSON.parse turns the escapes back into the same characters.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Milliseconds for people: '—' for null, '840 ms', '4.6 s'. */
export function ms(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return '—';
  if (Math.abs(value) < 10) return `${Number(value.toFixed(1))} ms`;
  if (Math.abs(value) < 1000) return `${Math.round(value)} ms`;
  if (Math.abs(value) < 10_000) return `${Number((value / 1000).toFixed(2))} s`;
  return `${Number((value / 1000).toFixed(1))} s`;
}

export function seconds(value: number): string {
  return `${Number((value / 1000).toFixed(1))} s`;
}

export function formatStart(iso: string): string {
  return iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
}
