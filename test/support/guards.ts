/**
 * Guards for tests that attack the pool: every test runs with `uncaughtException` and
 * `unhandledRejection` recorded (and asserted empty afterwards), and every await can be bounded,
 * so a hang fails fast and says where instead of timing the file out.
 */
import { afterEach, beforeEach, expect } from 'vitest';

/** `promise`, or a rejection naming `what` after `ms`: a hang fails fast and says where. */
export function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not settle within ${ms} ms (it hangs)`)),
      ms,
    );
  });
  return Promise.race([promise, hang]).finally(() => clearTimeout(timer));
}

export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** The outcome of `promise`, never a rejection. */
export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/** 'resolved', or the error's code. */
export const codeOf = (outcome: Settled<unknown>): unknown =>
  outcome.ok ? 'resolved' : (outcome.error as { code?: unknown } | undefined)?.code;

/**
 * Records uncaught errors during each test of the file; after each, runs `cleanup` (bounded),
 * gives late socket errors a few ticks to surface, and asserts that none was uncaught.
 */
export function guardEachTest(cleanup: () => Promise<unknown> | unknown): void {
  const uncaught: unknown[] = [];
  const record = (err: unknown) => {
    uncaught.push(err);
  };
  beforeEach(() => {
    uncaught.length = 0;
    process.on('uncaughtException', record);
    process.on('unhandledRejection', record);
  });
  afterEach(async () => {
    try {
      await bounded(Promise.resolve(cleanup()), 15_000, 'the cleanup after the test');
      // An error of a socket closed after its call settled surfaces within a few ticks.
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off('uncaughtException', record);
      process.off('unhandledRejection', record);
    }
    expect(uncaught, 'uncaught exceptions or unhandled rejections during the test').toEqual([]);
  });
}
