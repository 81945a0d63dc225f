/**
 * Bounds a measured round in time. A call that never settles (a hung server, or a pool that
 * never answers) would otherwise leave the bench waiting forever, or, when nothing else keeps
 * the event loop alive, end the process with an unsettled top-level await (exit code 13).
 */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish within ${ms} ms (a call never settled?)`)),
      ms,
    );
  });
  try {
    return await Promise.race([work, stuck]);
  } finally {
    clearTimeout(timer);
  }
}
