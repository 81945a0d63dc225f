/**
 * Where an endpoint's pool connects, as OpenTelemetry names it (`server.address`, `server.port`,
 * `db.namespace`), resolved the way pg resolves its settings (the cache's identity does the
 * same: options, connection string, PG* variables, defaults). The user and the password are
 * never read into it: these values go into metric labels and span attributes.
 */
import { connectionIdentity } from '../cache/identity.js';
import type { PgPoolLike } from '../pg-like.js';
import type { EndpointAttributes } from './observer.js';

export function endpointAttributes(pool: PgPoolLike): EndpointAttributes {
  const options = pool.options as Readonly<Record<string, unknown>> | undefined;
  if (typeof options !== 'object' || options === null) return {};
  const { host, port, database } = connectionIdentity(options);
  const attributes: EndpointAttributes = {};
  if (host !== '') attributes['server.address'] = host;
  const portNumber = Number.parseInt(port, 10);
  if (Number.isInteger(portNumber) && portNumber > 0) attributes['server.port'] = portNumber;
  if (database !== '') attributes['db.namespace'] = database;
  return attributes;
}
