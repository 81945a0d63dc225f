/**
 * `resilient-pool/typeorm`: the DataSource options that make TypeORM's postgres driver use a
 * ResilientPool, with TypeORM's reads on replicas through its `replication` option. Imports
 * nothing from typeorm: the result is plain data to spread into `new DataSource({ ... })`.
 */
import {
  type PgModuleLike,
  PRIMARY_HOST,
  pgModuleFor,
  REPLICAS_HOST,
  type TypeormPool,
} from './pg-module.js';

export type { PgModuleLike, TypeormPool, TypeormPoolView } from './pg-module.js';

export interface TypeormIntegrationOptions {
  /**
   * Where TypeORM's reads go. 'replica' sets TypeORM's `replication` option: what TypeORM sends
   * to a "slave" (`find*`, `SelectQueryBuilder` outside a transaction) checks out a replica
   * client with `db.connect({ role: 'read' })` (the primary as fallback), and everything else
   * (writes, `dataSource.query()`, transactions, migrations, `synchronize`) a primary client.
   * 'primary' sends everything to the primary.
   * @default 'replica'
   */
  reads?: 'replica' | 'primary';
}

/** Spread into `new DataSource({ ... })`; see `typeormDataSourceOptions`. */
export interface ResilientTypeormOptions {
  readonly type: 'postgres';
  readonly driver: PgModuleLike;
  readonly host?: string;
  readonly replication?: {
    readonly master: { readonly host: string };
    readonly slaves: Array<{ readonly host: string }>;
  };
}

/**
 * TypeORM DataSource options over a ResilientPool: `type: 'postgres'`, a `driver` whose pools
 * are views of `db`, and (by default) `replication` so that TypeORM's reads check out replica
 * clients. Connection settings (`host`, `url`, `poolSize`, `extra`, `ssl`, ...) belong to the
 * pg.Pools inside `db`; TypeORM's are ignored. `dataSource.destroy()` leaves `db` open: end it
 * yourself, after the DataSource.
 *
 * @example
 * import { DataSource } from 'typeorm';
 * import { typeormDataSourceOptions } from 'resilient-pool/typeorm';
 *
 * const dataSource = new DataSource({
 *   ...typeormDataSourceOptions(db),
 *   entities: [User],
 * });
 * await dataSource.initialize();
 */
export function typeormDataSourceOptions(
  db: TypeormPool,
  options: TypeormIntegrationOptions = {},
): ResilientTypeormOptions {
  const reads = options.reads ?? 'replica';
  if (reads !== 'replica' && reads !== 'primary') {
    throw new TypeError(
      `typeormDataSourceOptions(): reads must be 'replica' or 'primary', got ${String(reads)}`,
    );
  }
  const driver = pgModuleFor(db);
  if (reads === 'primary') return { type: 'postgres', driver, host: PRIMARY_HOST };
  return {
    type: 'postgres',
    driver,
    replication: { master: { host: PRIMARY_HOST }, slaves: [{ host: REPLICAS_HOST }] },
  };
}
