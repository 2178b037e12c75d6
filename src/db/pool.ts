/** The postgres.js connection pool. One per process; passed to whatever needs SQL. */
import postgres from "postgres";

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

export interface PoolOptions {
  max?: number;
  /** Connection name shown in pg_stat_activity. */
  applicationName?: string;
  /**
   * "off": this pool's transactions commit without waiting for their WAL to reach the disk
   * (PostgreSQL's synchronous_commit). Only for writes that a lost commit cannot harm: the
   * worker's claims (src/worker/main.ts). Default: the server's setting (durable).
   */
  synchronousCommit?: "off";
}

export function createPool(url: string, options: PoolOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 10,
    onnotice: () => {},
    connection: {
      application_name: options.applicationName ?? "fluxbase",
      ...(options.synchronousCommit ? { synchronous_commit: options.synchronousCommit } : {}),
    },
  });
}
