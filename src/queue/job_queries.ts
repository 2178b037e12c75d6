/**
 * Every statement the engine runs on `jobs.queue`, one function each. Each write to a claimed
 * job is guarded by `status = 'running' AND worker_id = $me`: a worker that was declared dead,
 * or a job that was cancelled meanwhile, makes the write a no-op (graphile-worker failJobs).
 * A batch of 50 is one statement, one round trip and one change-capture trigger run: completions
 * and progress travel as an array of ids and JSON objects keyed by id, failures (rarer, and with
 * more fields) as one JSON parameter read with jsonb_to_recordset.
 */
import type { Sql } from "../db/pool.ts";

export interface ClaimedJob {
  id: string;
  function_id: string | null;
  function_version: number | null;
  job_name: string;
  namespace: string;
  payload: unknown;
  retry_count: number;
  max_retries: number;
  timeout_seconds: number | null;
  progress_timeout_seconds: number | null;
  created_by: string | null;
  user_role: string | null;
  user_email: string | null;
  /** Highest jobs.logs line number of earlier attempts: this attempt continues after it. */
  log_lines: number;
}

const INT4_MAX = 2_147_483_647;

/**
 * Claims up to `limit` pending jobs whose time has come, highest priority first, oldest first
 * within a priority, never letting a namespace exceed `namespaceLimit` running jobs across all
 * workers. The claim is the function jobs.claim_jobs (migrations/0004_claim_function.sql,
 * replaced by 0005, 0006, 0009, 0010 and 0013_hot_queue.sql): an advisory lock (key
 * 7262005002), the worker's row held while it is active, the running jobs summed from
 * jobs.running_counts, then the first entries of jobs.pending taken (deleted) and their rows
 * marked running. When the running jobs plus the claim could reach a namespace's limit, they are
 * counted per namespace and the entries ranked within theirs; while a namespace is at its limit,
 * the claim looks only at the other namespaces' entries, so it never reads the held namespace's
 * backlog. The advisory lock is needed because under READ COMMITTED a statement's snapshot
 * predates any lock it takes itself, so two concurrent claims would both count the same running
 * jobs and overshoot the limit; in the function the claim is a later statement than the lock,
 * with a fresh snapshot that sees what the previous lock holder committed. The call runs as one
 * implicit transaction (the lock is held to its end, an error rolls all of it back) in one round
 * trip, and the function keeps its plan for the connection (the multi-statement query it
 * replaces was planned on every call: 0.4-0.6 ms per claim of 50). A row another transaction is
 * changing (a cancel) is waited for, then claimed only if it is still pending.
 */
export async function jobClaimAvailable(
  sql: Sql,
  workerId: string,
  limit: number,
  namespaceLimit: number,
): Promise<ClaimedJob[]> {
  const n = Math.min(INT4_MAX, Math.max(0, Math.floor(limit)));
  const nsLimit = Math.min(INT4_MAX, Math.max(0, Math.floor(namespaceLimit)));
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(nsLimit)) {
    throw new RangeError(`Invalid claim limits ${limit}, ${namespaceLimit}`);
  }
  return await sql<ClaimedJob[]>`
    select * from jobs.claim_jobs(${workerId}::uuid, ${n}::int, ${nsLimit}::int)`;
}

export interface Completion {
  id: string;
  result: unknown;
  /** Last coalesced progress not yet written, or null. */
  progress: unknown;
  /** Log text to append to `jobs.queue.logs`, or null. */
  logs: string | null;
}

/**
 * JSON text of an object {job id: value} with the items' non-null values, or null when all are
 * null. Sent as text and cast to jsonb in SQL: postgres.js's own jsonb encoding would stringify
 * the text again. Ids are lower-cased, as PostgreSQL prints the uuid keys it looks up.
 */
function valuesById<T extends { id: string }>(
  items: T[],
  value: (item: T) => unknown,
): string | null {
  let out: Record<string, unknown> | null = null;
  for (const item of items) {
    const v = value(item);
    if (v === undefined || v === null) continue;
    (out ??= {})[item.id.toLowerCase()] = v;
  }
  return out === null ? null : JSON.stringify(out);
}

/**
 * Marks finished jobs completed; returns how many were still ours and running. A null or
 * undefined result is SQL NULL. jobs.complete_jobs (migrations/0007_complete_by_key.sql) finds
 * each row by its key and looks its values up in JSON objects keyed by job id. Only the count
 * comes back: nothing reads the ids, and a batch of 200 ids was 200 rows for the client to
 * parse.
 */
export async function jobCompleteManyIfRunning(
  sql: Sql,
  workerId: string,
  completions: Completion[],
): Promise<number> {
  if (completions.length === 0) return 0;
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from jobs.complete_jobs(${workerId}::uuid,
      ${completions.map((c) => c.id)}::uuid[],
      ${valuesById(completions, (c) => c.result)}::text::jsonb,
      ${valuesById(completions, (c) => c.progress)}::text::jsonb,
      ${valuesById(completions, (c) => c.logs)}::text::jsonb)`;
  return n;
}

export interface Failure {
  id: string;
  error: string;
  /** Backoff before the next attempt (retry_policy.ts); unused when no attempt is left. */
  delayMs: number;
  /** False: the job fails for good whatever its retry budget (e.g. its function is gone). */
  retryable: boolean;
  progress: unknown;
  logs: string | null;
}

export interface FailedRow {
  id: string;
  status: "pending" | "failed";
  retry_count: number;
}

/**
 * Records failed attempts: back to pending with retry_count + 1 after the backoff when an
 * attempt is left, otherwise failed with the error. Only jobs still ours and running change.
 */
export function jobFailManyIfRunning(
  sql: Sql,
  workerId: string,
  failures: Failure[],
): Promise<FailedRow[]> {
  return sql<FailedRow[]>`
    update jobs.queue q
    set status = case when v.retry then 'pending' else 'failed' end,
        retry_count = q.retry_count + case when v.retry then 1 else 0 end,
        run_after = case when v.retry then now() + v.delay_ms * interval '1 millisecond'
                         else q.run_after end,
        worker_id = case when v.retry then null else q.worker_id end,
        completed_at = case when v.retry then null else now() end,
        error_message = v.error, updated_at = now(),
        progress = coalesce(v.progress, q.progress),
        logs = case when v.logs is null then q.logs else coalesce(q.logs, '') || v.logs end
    from (
      select f.*, f.retryable and q2.retry_count < q2.max_retries as retry
      from jsonb_to_recordset(${JSON.stringify(failures)}::text::jsonb)
        as f(id uuid, error text, "delayMs" float8, retryable boolean, progress jsonb, logs text)
      join jobs.queue q2 on q2.id = f.id
    ) as v(id, error, delay_ms, retryable, progress, logs, retry)
    where q.id = v.id and q.status = 'running' and q.worker_id = ${workerId}
    returning q.id, q.status, q.retry_count`;
}

/**
 * Returns jobs to pending without charging an attempt (graceful shutdown, a worker giving
 * back jobs it never started).
 */
export async function jobReleaseManyIfRunning(
  sql: Sql,
  workerId: string,
  ids: string[],
): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await sql<{ id: string }[]>`
    update jobs.queue
    set status = 'pending', worker_id = null, started_at = null, run_after = now(),
        updated_at = now()
    where id = any(${ids}::uuid[]) and status = 'running' and worker_id = ${workerId}
    returning id`;
  return rows.map((r) => r.id);
}

export interface ProgressUpdate {
  id: string;
  progress: unknown;
}

/**
 * Writes the latest coalesced progress of several running jobs (jobs.progress_jobs, found by
 * key as completions are); an update whose progress is null writes nothing.
 */
export async function jobProgressUpdateMany(
  sql: Sql,
  workerId: string,
  updates: ProgressUpdate[],
): Promise<void> {
  const progress = valuesById(updates, (u) => u.progress);
  if (progress === null) return;
  await sql`
    select jobs.progress_jobs(${workerId}::uuid, ${updates.map((u) => u.id)}::uuid[],
      ${progress}::text::jsonb)`;
}

/**
 * Of the given jobs, those no longer ours and running (cancelled, rescued): the safety net
 * for a cancel notification lost while the LISTEN connection was down.
 */
export async function jobListLostOfWorker(
  sql: Sql,
  workerId: string,
  ids: string[],
): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await sql<{ id: string }[]>`
    select id from jobs.queue
    where id = any(${ids}::uuid[]) and (status <> 'running' or worker_id is distinct from ${workerId})`;
  return rows.map((r) => r.id);
}
