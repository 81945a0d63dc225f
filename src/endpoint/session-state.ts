/**
 * The transaction status PostgreSQL reports with every ReadyForQuery ('I' idle, 'T' in a
 * transaction, 'E' in a failed transaction), tracked per pg client so that a client is never
 * handed back to the pool inside a transaction someone left open.
 */
const STATUS = Symbol('resilient-pool.transactionStatus');

interface Tracked {
  [STATUS]?: string;
  connection?: {
    prependListener?(event: 'readyForQuery', listener: (msg: { status?: string }) => void): unknown;
  };
}

/**
 * Starts tracking `client` (once per client; later calls are a property check). The listener is
 * prepended so the status is current when pg runs the statement's callback.
 */
export function trackTransactionStatus(client: object): void {
  const tracked = client as Tracked;
  if (tracked[STATUS] !== undefined) return;
  const connection = tracked.connection;
  if (typeof connection?.prependListener !== 'function') {
    tracked[STATUS] = 'unknown';
    return;
  }
  tracked[STATUS] = 'I';
  connection.prependListener('readyForQuery', (msg) => {
    tracked[STATUS] = msg.status ?? 'I';
  });
}

/** Whether the client's session is inside a (possibly failed) transaction. */
export function inTransaction(client: object): boolean {
  const status = (client as Tracked)[STATUS];
  return status === 'T' || status === 'E';
}
