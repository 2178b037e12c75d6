/** The postgres.js connection pool. One per process; passed to whatever needs SQL. */
import postgres from "postgres";

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

export interface PoolOptions {
  max?: number;
  /** Connection name shown in pg_stat_activity. */
  applicationName?: string;
}

export function createPool(url: string, options: PoolOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? "fluxbase" },
  });
}
