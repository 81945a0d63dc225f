/** Bounded polling for integration tests: resolves when `check` returns truthy, else throws. */
export async function until<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 15_000, intervalMs = 50 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Runs `worker` on `concurrency` loops until `count` calls have been made in all; every loop is
 * bounded by the count. Returns the outcome of every call in order of completion.
 */
export async function load<T>(
  count: number,
  concurrency: number,
  worker: (i: number) => Promise<T>,
): Promise<Array<{ ok: true; value: T } | { ok: false; error: unknown }>> {
  const outcomes: Array<{ ok: true; value: T } | { ok: false; error: unknown }> = [];
  let next = 0;
  const loop = async () => {
    while (next < count) {
      const i = next++;
      try {
        outcomes.push({ ok: true, value: await worker(i) });
      } catch (error) {
        outcomes.push({ ok: false, error });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return outcomes;
}
