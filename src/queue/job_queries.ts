/**
 * Every statement the engine runs on `jobs.queue`, one function each. Each write to a claimed
 * job is guarded by `status = 'running' AND worker_id = $me`: a worker that was declared dead,
 * or a job that was cancelled meanwhile, makes the write a no-op (graphile-worker failJobs).
 * Batches travel as one JSON parameter read with jsonb_to_recordset, so a batch of 50 is one
 * statement, one round trip and one change-capture trigger run.
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

/** Arbitrary but fixed key of the advisory lock that serialises claims (namespace limit). */
const CLAIM_LOCK_KEY = 7_262_005_002;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Claims up to `limit` pending jobs whose time has come, highest priority first, oldest first
 * within a priority, never letting a namespace exceed `namespaceLimit` running jobs across all
 * workers. The claim is one statement behind an advisory lock, because under READ COMMITTED a
 * statement's snapshot predates any lock it takes itself, so two concurrent claims would both
 * count the same running jobs and overshoot the limit. Lock and claim travel as one
 * multi-statement simple query: Postgres runs it as one implicit transaction (the lock is held
 * to its end, an error rolls all of it back) and gives each statement a fresh snapshot, so the
 * claim sees what the previous lock holder committed. One round trip instead of four
 * (BEGIN, lock, claim, COMMIT), so the values are inlined: a checked uuid and two integers.
 */
export async function jobClaimAvailable(
  sql: Sql,
  workerId: string,
  limit: number,
  namespaceLimit: number,
): Promise<ClaimedJob[]> {
  if (!UUID.test(workerId)) throw new TypeError(`Invalid worker id "${workerId}"`);
  const n = Math.max(0, Math.floor(limit));
  const nsLimit = Math.max(0, Math.floor(namespaceLimit));
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(nsLimit)) {
    throw new RangeError(`Invalid claim limits ${limit}, ${namespaceLimit}`);
  }
  const me = `'${workerId}'::uuid`;
  // The planner's row estimates for a queue swing with every batch; a stale "few pending"
  // estimate picks a scan of every pending row plus a sort (measured: 15 ms for 5000 rows)
  // where the partial claim index returns the first `limit` rows in order. Forbid the scans
  // for this transaction only, in the statement that takes the lock.
  const results = await sql.unsafe(
    `select pg_advisory_xact_lock(${CLAIM_LOCK_KEY}),
      set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
    with running as (
      select namespace, count(*)::int as n from jobs.queue
      where status = 'running' group by namespace
    ), locked as (
      select q.id, q.namespace, q.priority, q.created_at from jobs.queue q
      where q.status = 'pending' and q.run_after <= now()
        -- A worker declared dead (or stopped) claims nothing, even before it notices.
        and exists (select 1 from jobs.workers w where w.id = ${me} and w.status = 'active')
        and q.namespace <> all(array(select namespace from running where n >= ${nsLimit}))
      order by q.priority desc, q.created_at, q.id
      limit ${n}
      for update skip locked
    ), ranked as (
      select l.id, row_number() over (
               partition by l.namespace order by l.priority desc, l.created_at, l.id) as rn,
             coalesce((select n from running r where r.namespace = l.namespace), 0) as n
      from locked l
    )
    update jobs.queue q
    set status = 'running', worker_id = ${me}, started_at = now(),
        last_progress_at = now(), completed_at = null, updated_at = now()
    from ranked k
    where q.id = k.id and k.n + k.rn <= ${nsLimit}
    returning q.id, q.function_id, q.function_version, q.job_name, q.namespace, q.payload,
      q.retry_count, q.max_retries, q.timeout_seconds, q.progress_timeout_seconds,
      q.created_by, q.user_role, q.user_email,
      (select coalesce(max(line_number), 0) from jobs.logs g where g.job_id = q.id)::int
        as log_lines`,
  );
  // postgres.js labels the results of a multi-statement query oddly, so find the claim's
  // rows by their columns rather than by position.
  const claimed = (results as unknown as { columns?: { name: string }[] }[]).find((r) =>
    r.columns?.some((c) => c.name === "log_lines")
  );
  return (claimed ?? []) as unknown as ClaimedJob[];
}

export interface Completion {
  id: string;
  result: unknown;
  /** Last coalesced progress not yet written, or null. */
  progress: unknown;
  /** Log text to append to `jobs.queue.logs`, or null. */
  logs: string | null;
}

/** Marks finished jobs completed; returns the ids that were still ours and running. */
export async function jobCompleteManyIfRunning(
  sql: Sql,
  workerId: string,
  completions: Completion[],
): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    update jobs.queue q
    set status = 'completed', result = v.result, completed_at = now(), updated_at = now(),
        progress = coalesce(v.progress, q.progress),
        last_progress_at = case when v.progress is null then q.last_progress_at else now() end,
        logs = case when v.logs is null then q.logs else coalesce(q.logs, '') || v.logs end
    from jsonb_to_recordset(${JSON.stringify(completions)}::text::jsonb)
      as v(id uuid, result jsonb, progress jsonb, logs text)
    where q.id = v.id and q.status = 'running' and q.worker_id = ${workerId}
    returning q.id`;
  return rows.map((r) => r.id);
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

/** Writes the latest coalesced progress of several running jobs. */
export async function jobProgressUpdateMany(
  sql: Sql,
  workerId: string,
  updates: ProgressUpdate[],
): Promise<void> {
  await sql`
    update jobs.queue q
    set progress = v.progress, last_progress_at = now(), updated_at = now()
    from jsonb_to_recordset(${JSON.stringify(updates)}::text::jsonb) as v(id uuid, progress jsonb)
    where q.id = v.id and q.status = 'running' and q.worker_id = ${workerId}`;
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
