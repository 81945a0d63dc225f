/** What a log line may say about an error: its name, code and message, never a connection string. */
export function describeError(err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  return { name: e.name, code: e.code, message: e.message };
}
