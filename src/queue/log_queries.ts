/** Execution log lines: `jobs.logs` rows and the job's capped `logs` text, in one statement. */
import type { Sql } from "../db/pool.ts";

export interface LogRow {
  job_id: string;
  line_number: number;
  level: string;
  message: string;
  created_at: string;
}

/**
 * Inserts log lines of several jobs and appends them to each job's `jobs.queue.logs` text
 * (while the job is still held by this worker: a zombie's lines never reach the text).
 */
export async function logInsertMany(sql: Sql, workerId: string, rows: LogRow[]): Promise<void> {
  await sql`
    with v as (
      select * from jsonb_to_recordset(${JSON.stringify(rows)}::text::jsonb)
        as v(job_id uuid, line_number int, level text, message text, created_at timestamptz)
    ), ins as (
      insert into jobs.logs (job_id, line_number, level, message, created_at)
      select job_id, line_number, level, message, created_at from v
      on conflict (job_id, line_number) do nothing
    )
    update jobs.queue q
    set logs = coalesce(q.logs, '') || t.text
    from (
      select job_id, string_agg(
               case when level = 'info' then message else '[' || level || '] ' || message end
               || E'\n', '' order by line_number) as text
      from v group by job_id
    ) t
    where q.id = t.job_id and q.worker_id = ${workerId}`;
}
