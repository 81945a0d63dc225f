/**
 * What admission at an endpoint decided, synchronously, before any promise exists: a permit
 * taken at once, a place in the queue, or a typed refusal. The two outcomes without data are
 * shared constants, so admitting a call allocates nothing.
 */
export type Admission = typeof ADMITTED | typeof QUEUED | Refused;

/** A permit was free and nobody waited: it is taken. */
export const ADMITTED = { kind: 'admitted' } as const;
/** The call must wait in the endpoint's queue for a permit. */
export const QUEUED = { kind: 'queued' } as const;

/** Refused (closed, down, circuit open, queue full): nothing was sent. */
export interface Refused {
  readonly kind: 'refused';
  readonly error: Error;
}

export function refused(error: Error): Refused {
  return { kind: 'refused', error };
}
