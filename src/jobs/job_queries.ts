/**
 * SQL on jobs.queue for the API: one statement per function, parameters only. Every function
 * takes the transaction it runs in; callers use asUser() so RLS decides which rows exist.
 */
import type { Tx } from "../db/pool.ts";

export type JobStatus = "pending" | "running" | "completed" | "failed" | "cancelled";
export const JOB_STATUSES: readonly JobStatus[] = [
  "pending",
  "running",
  "completed",
  "failed",
  "cancelled",
];

/** A job as the API returns it (JSON fields as JSON values). */
export interface Job {
  id: string;
  job_name: string;
  namespace: string;
  status: JobStatus;
  payload: unknown;
  priority: number;
  progress: { percent: number; message: string; data?: unknown };
  result: unknown;
  error_message: string | null;
  logs: string | null;
  created_by: string | null;
  user_role: string | null;
  user_email: string | null;
  worker_id: string | null;
  retry_count: number;
  max_retries: number;
  timeout_seconds: number | null;
  function_id: string | null;
  scheduled_at: Date | null;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  last_progress_at: Date | null;
  updated_at: Date;
}

export interface JobInsert {
  function_id: string;
  function_version: number;
  job_name: string;
  namespace: string;
  payload: unknown;
  priority: number;
  created_by: string | null;
  user_role: string | null;
  user_email: string | null;
  max_retries: number;
  timeout_seconds: number;
  progress_timeout_seconds: number | null;
  scheduled_at: Date | null;
}

export interface JobFilters {
  status?: JobStatus;
  namespace?: string;
  job_name?: string;
  worker_id?: string;
  created_by?: string;
}

const COLUMNS = `id, job_name, namespace, status, payload, priority, progress, result,
  error_message, logs, created_by, user_role, user_email, worker_id, retry_count, max_retries,
  timeout_seconds, function_id, scheduled_at, created_at, started_at, completed_at,
  last_progress_at, updated_at`;

export async function jobInsert(tx: Tx, job: JobInsert): Promise<Job> {
  const [row] = await tx.unsafe<Job[]>(
    `insert into jobs.queue (function_id, function_version, job_name, namespace, payload,
       priority, created_by, user_role, user_email, max_retries, timeout_seconds,
       progress_timeout_seconds, scheduled_at, run_after)
     values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13,
       coalesce($13::timestamptz, now()))
     returning ${COLUMNS}`,
    [
      job.function_id,
      job.function_version,
      job.job_name,
      job.namespace,
      // A jsonb parameter: postgres.js serialises the JS value as JSON (so pass it as is, not
      // JSON.stringify'd, or it is stored as a JSON string); undefined/null is SQL NULL.
      job.payload ?? null,
      job.priority,
      job.created_by,
      job.user_role,
      job.user_email,
      job.max_retries,
      job.timeout_seconds,
      job.progress_timeout_seconds,
      job.scheduled_at,
    ] as never[],
  );
  return row;
}

export async function jobGetById(tx: Tx, id: string): Promise<Job | null> {
  const [row] = await tx.unsafe<Job[]>(`select ${COLUMNS} from jobs.queue where id = $1`, [id]);
  return row ?? null;
}

/** A page of jobs, newest first, with the total count of rows that match. */
export async function jobList(
  tx: Tx,
  filters: JobFilters,
  limit: number,
  offset: number,
): Promise<{ jobs: Job[]; total: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  for (const key of ["status", "namespace", "job_name", "worker_id", "created_by"] as const) {
    const value = filters[key];
    if (value !== undefined) {
      params.push(value);
      where.push(`${key} = $${params.length}`);
    }
  }
  const clause = where.length ? `where ${where.join(" and ")}` : "";
  params.push(limit, offset);
  const rows = await tx.unsafe<(Job & { total_count: string })[]>(
    `select ${COLUMNS}, count(*) over () as total_count from jobs.queue ${clause}
     order by created_at desc, id desc limit $${params.length - 1} offset $${params.length}`,
    params as never[],
  );
  let total = rows.length ? Number(rows[0].total_count) : 0;
  if (rows.length === 0 && offset > 0) {
    const [c] = await tx.unsafe<{ n: string }[]>(
      `select count(*) as n from jobs.queue ${clause}`,
      params.slice(0, -2) as never[],
    );
    total = Number(c.n);
  }
  for (const row of rows) delete (row as Partial<typeof row>).total_count;
  return { jobs: rows, total };
}

/** Cancels a pending or running job; null when no visible job was in such a state. */
export async function jobCancelIfActive(
  tx: Tx,
  id: string,
  errorMessage: string | null,
): Promise<Job | null> {
  const [row] = await tx.unsafe<Job[]>(
    `update jobs.queue set status = 'cancelled', completed_at = now(), updated_at = now(),
       error_message = coalesce($2, error_message)
     where id = $1 and status in ('pending', 'running')
     returning ${COLUMNS}`,
    [id, errorMessage],
  );
  return row ?? null;
}

/** Tells the worker holding a job to stop it now (admin terminate). */
export async function jobNotifyTerminate(tx: Tx, id: string): Promise<void> {
  await tx`select pg_notify('fluxbase_terminate', ${id})`;
}

export interface LogLine {
  line_number: number;
  level: string;
  message: string;
  created_at: Date;
}

export async function jobLogsAfter(
  tx: Tx,
  jobId: string,
  afterLine: number,
  limit: number,
): Promise<LogLine[]> {
  return await tx<LogLine[]>`
    select line_number, level, message, created_at from jobs.logs
    where job_id = ${jobId} and line_number > ${afterLine}
    order by line_number limit ${limit}`;
}

export interface JobStats {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  total: number;
  avg_duration_ms: number | null;
}

export async function jobStats(tx: Tx, namespace: string | null): Promise<JobStats> {
  const [row] = await tx<Record<string, string | null>[]>`
    select
      count(*) filter (where status = 'pending') as pending,
      count(*) filter (where status = 'running') as running,
      count(*) filter (where status = 'completed') as completed,
      count(*) filter (where status = 'failed') as failed,
      count(*) filter (where status = 'cancelled') as cancelled,
      count(*) as total,
      avg(extract(epoch from (completed_at - started_at)) * 1000)
        filter (where status = 'completed' and started_at is not null) as avg_duration_ms
    from jobs.queue
    where ${namespace}::text is null or namespace = ${namespace}`;
  return {
    pending: Number(row.pending),
    running: Number(row.running),
    completed: Number(row.completed),
    failed: Number(row.failed),
    cancelled: Number(row.cancelled),
    total: Number(row.total),
    avg_duration_ms: row.avg_duration_ms === null ? null : Math.round(Number(row.avg_duration_ms)),
  };
}

export async function namespacesList(tx: Tx): Promise<string[]> {
  const rows = await tx<{ namespace: string }[]>`
    select namespace from jobs.functions union select distinct namespace from jobs.queue
    order by 1`;
  return rows.map((r) => r.namespace);
}

export interface WorkerRow {
  id: string;
  name: string;
  hostname: string;
  pid: number | null;
  status: string;
  max_concurrent_jobs: number;
  current_job_count: number;
  last_heartbeat_at: Date;
  started_at: Date;
}

export async function workersList(tx: Tx, includeStopped: boolean): Promise<WorkerRow[]> {
  return await tx<WorkerRow[]>`
    select id, name, hostname, pid, status, max_concurrent_jobs, current_job_count,
      last_heartbeat_at, started_at
    from jobs.workers
    where ${includeStopped} or status in ('active', 'draining')
    order by started_at desc`;
}
