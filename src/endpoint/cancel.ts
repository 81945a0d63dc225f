/**
 * Cancels the statement a pg client is running, the way libpq's PQcancel does: a CancelRequest
 * (the backend's process id and secret key) on a new connection to the same server. It needs no
 * authentication and no pool slot, so it works when the pool is exhausted. Best effort: if the
 * server already finished the statement, nothing happens.
 */
import net from 'node:net';

/** Protocol constant of a CancelRequest (PostgreSQL protocol 3, section 55.2.8). */
const CANCEL_REQUEST_CODE = 80877102;
const CANCEL_TIMEOUT_MS = 5_000;

interface CancellableClient {
  processID?: number | null;
  secretKey?: number | null;
  host?: string;
  port?: number;
}

/** Whether `client` exposes what a CancelRequest needs (pg.Client does). */
export function canCancel(client: object): boolean {
  const c = client as CancellableClient;
  return typeof c.processID === 'number' && typeof c.secretKey === 'number';
}

/** Sends a CancelRequest for `client`'s backend; resolves when sent (or failed), never rejects. */
export function cancelBackend(client: object): Promise<boolean> {
  const c = client as CancellableClient;
  if (typeof c.processID !== 'number' || typeof c.secretKey !== 'number') {
    return Promise.resolve(false);
  }
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(c.processID, 8);
  packet.writeInt32BE(c.secretKey, 12);
  const host = c.host ?? 'localhost';
  const port = c.port ?? 5432;
  return new Promise((resolve) => {
    const socket = host.startsWith('/')
      ? net.connect(`${host}/.s.PGSQL.${port}`)
      : net.connect({ host, port });
    const finish = (sent: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(sent);
    };
    const timer = setTimeout(() => finish(false), CANCEL_TIMEOUT_MS);
    // Written, not ended: PgBouncer takes a half-closed socket for a client gone away and drops
    // the request. The server (or PgBouncer) closes the connection once it has read it.
    socket.on('connect', () => socket.write(packet));
    // The server closes the connection once it has read the request.
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(false));
  });
}
