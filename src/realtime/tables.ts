/**
 * Tables whose changes the hub publishes, with the type of each column of their realtime
 * record (filters compare by type) and the column RLS ownership is read from.
 * The record shape is `jobs.realtime_record()` in migrations/0003_notify.sql.
 */
export type ColumnType = "text" | "uuid" | "integer" | "timestamptz" | "boolean" | "jsonb";

export interface RealtimeTable {
  schema: string;
  table: string;
  columns: Record<string, ColumnType>;
  /** Column holding the owner's user id, compared with the subscriber's `sub`. */
  ownerColumn: string;
}

export const JOBS_QUEUE: RealtimeTable = {
  schema: "jobs",
  table: "queue",
  ownerColumn: "created_by",
  columns: {
    id: "uuid",
    job_name: "text",
    namespace: "text",
    status: "text",
    progress: "jsonb",
    created_at: "timestamptz",
    started_at: "timestamptz",
    completed_at: "timestamptz",
    last_progress_at: "timestamptz",
    scheduled_at: "timestamptz",
    priority: "integer",
    result: "jsonb",
    error_message: "text",
    logs: "text",
    created_by: "text",
    user_role: "text",
    user_email: "text",
    worker_id: "uuid",
    retry_count: "integer",
    max_retries: "integer",
  },
};

export const REALTIME_TABLES: readonly RealtimeTable[] = [JOBS_QUEUE];

export function tableKey(schema: string, table: string): string {
  return `${schema}.${table}`;
}

/** Finds a published table; `schema` may be omitted when the table name is unambiguous. */
export function findTable(schema: string | null, table: string): RealtimeTable | null {
  const matches = REALTIME_TABLES.filter((t) =>
    t.table === table && (schema === null || t.schema === schema)
  );
  return matches.length === 1 ? matches[0] : null;
}

export function tableNames(): string {
  return REALTIME_TABLES.map((t) => tableKey(t.schema, t.table)).join(", ");
}
