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

interface Waitable {
  readyForQuery?: boolean;
  connection?: {
    once?(event: 'readyForQuery', listener: () => void): unknown;
    off?(event: 'readyForQuery', listener: () => void): unknown;
  };
  on?(event: 'error', listener: (err: Error) => void): unknown;
  off?(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * Calls `then` once pg has read the ReadyForQuery that follows the statement just answered. pg
 * answers a failed statement before that message arrives, so only then is the transaction status
 * current ('BEGIN; SELECT 1/0' leaves a failed transaction that must be rolled back). If the
 * connection fails meanwhile, `then` gets the error and the client must be destroyed; the
 * listener also keeps that error from crashing the process.
 */
export function afterReadyForQuery(client: object, then: (err?: Error) => void): void {
  const c = client as Waitable;
  const connection = c.connection;
  if (c.readyForQuery !== false || typeof connection?.once !== 'function') {
    then();
    return;
  }
  const onReady = () => {
    c.off?.('error', onError);
    then();
  };
  const onError = (err: Error) => {
    connection.off?.('readyForQuery', onReady);
    c.off?.('error', onError);
    then(err);
  };
  connection.once('readyForQuery', onReady);
  c.on?.('error', onError);
}
