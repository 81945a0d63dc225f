import type { Readable } from 'node:stream';

/**
 * Feeds a stream's chunks to `onLine` one complete line at a time: a chunk may end in the middle
 * of a line, and the messages matched in server output must be seen whole.
 */
export function forEachLine(stream: Readable | null, onLine: (line: string) => void): void {
  if (stream === null) return;
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) onLine(line);
  });
  stream.on('end', () => {
    if (partial !== '') onLine(partial);
    partial = '';
  });
}
