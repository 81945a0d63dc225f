/**
 * `resilient-pool/kysely`: Kysely over a ResilientPool with reads on replicas
 * (`ResilientDialect`), and Kysely transactions re-run on conflicts by `db.transaction()`
 * (`transaction`). Needs `kysely` (an optional peer dependency of resilient-pool).
 */
export type { KyselyPool } from './connection.js';
export type { ResilientDialectConfig } from './dialect.js';
export { ResilientDialect } from './dialect.js';
export type { CursorConstructor, CursorLike } from './result.js';
export { isReplicaSafeQuery, onPrimary } from './routing.js';
export type {
  KyselyTransactionAttempt,
  KyselyTransactionOptions,
  TransactionPool,
} from './transaction.js';
export { transaction } from './transaction.js';
