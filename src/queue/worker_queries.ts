/**
 * Statements on `jobs.workers`, and the rescue of jobs held by workers that died. A rescued
 * job is a failed attempt: back to pending after the backoff of retry_policy.ts (computed
 * here in SQL, same formula) or failed when out of attempts.
 */
import type { Sql } from "../db/pool.ts";
import type { RetryPolicy } from "./retry_policy.ts";

export interface WorkerRegistration {
  id: string;
  name: string;
  hostname: string;
  pid: number;
  maxConcurrentJobs: number;
}

export async function workerRegister(sql: Sql, w: WorkerRegistration): Promise<void> {
  await sql`
    insert into jobs.workers (id, name, hostname, pid, max_concurrent_jobs)
    values (${w.id}, ${w.name}, ${w.hostname}, ${w.pid}, ${w.maxConcurrentJobs})`;
}

/**
 * Proves the worker alive. Returns false when the worker is no longer active or draining
 * (the rescuer declared it dead): it must stop, its jobs already belong to others.
 */
export async function workerHeartbeat(
  sql: Sql,
  id: string,
  currentJobCount: number,
  status: "active" | "draining",
): Promise<boolean> {
  const rows = await sql`
    update jobs.workers
    set last_heartbeat_at = now(), current_job_count = ${currentJobCount}, status = ${status}
    where id = ${id} and status in ('active', 'draining')
    returning id`;
  return rows.length === 1;
}

export async function workerMarkStopped(sql: Sql, id: string): Promise<void> {
  await sql`
    update jobs.workers
    set status = 'stopped', stopped_at = now(), current_job_count = 0
    where id = ${id} and status in ('active', 'draining')`;
}

export interface RescuedJob {
  id: string;
  status: "pending" | "failed";
}

/**
 * Declares dead every worker silent for longer than `timeoutMs` and fails the attempts of the
 * running jobs they held, plus running jobs whose worker is not alive at all (stopped, dead,
 * or unknown): one statement, so the rescue is atomic and idempotent. The workers come from
 * jobs.running_counts; jobs.queue, which has no index on running jobs (0013), is read only when
 * one of them is not alive: the `exists` is evaluated once, before the scan.
 */
export function workerRescueStale(
  sql: Sql,
  timeoutMs: number,
  reason: string,
  policy: RetryPolicy,
): Promise<RescuedJob[]> {
  return sql<RescuedJob[]>`
    with dead as (
      update jobs.workers set status = 'dead', stopped_at = now(), current_job_count = 0
      where status in ('active', 'draining')
        and last_heartbeat_at < now() - ${timeoutMs} * interval '1 millisecond'
      returning id
    ), counts as (
      -- Running jobs per worker, and whether the worker is alive after this statement.
      select c.worker_id, sum(jobs.running_delta(c)) as n,
             exists (select 1 from jobs.workers w
                     where w.id = c.worker_id and w.status in ('active', 'draining')
                       and w.id not in (select id from dead)) as alive
      from jobs.running_counts c group by c.worker_id
    ), spent as (
      -- Counts of workers gone whose jobs have all stopped (nothing else writes them any more).
      delete from jobs.running_counts c
      where c.worker_id in (select worker_id from counts where n = 0 and not alive)
    ), suspects as (
      select worker_id from counts where n > 0 and not alive
    ), lost as (
      select q.id from jobs.queue q
      where exists (select 1 from suspects) and q.status = 'running'
        and jobs.running_worker(q.worker_id) in (select worker_id from suspects)
      for update of q skip locked
    )
    ${failAttempts(sql, reason, policy)}
    where q.id in (select id from lost) and q.status = 'running'
    returning q.id, q.status`;
}

/**
 * The supervisor saw worker `id` exit without stopping cleanly (crash, out of memory): mark
 * it dead and fail the attempts of its running jobs with `reason` (jobs.queue is read only
 * when jobs.running_counts says it had some).
 */
export function workerRescueById(
  sql: Sql,
  id: string,
  reason: string,
  policy: RetryPolicy,
): Promise<RescuedJob[]> {
  return sql<RescuedJob[]>`
    with dead as (
      update jobs.workers set status = 'dead', stopped_at = now(), current_job_count = 0
      where id = ${id} and status in ('active', 'draining')
      returning id
    )
    ${failAttempts(sql, reason, policy)}
    where (select coalesce(sum(jobs.running_delta(c)), 0) from jobs.running_counts c
           where c.worker_id = ${id}) > 0
      and q.status = 'running' and q.worker_id = ${id}
    returning q.id, q.status`;
}

/** The UPDATE head shared by both rescues: a failed attempt, the formula of retry_policy.ts. */
function failAttempts(sql: Sql, reason: string, p: RetryPolicy) {
  return sql`
    update jobs.queue q
    set status = case when q.retry_count < q.max_retries then 'pending' else 'failed' end,
        run_after = case when q.retry_count < q.max_retries
          then now() + least(${p.retryMaxDelayMs}::float8,
                             ${p.retryBaseDelayMs}::float8 * power(2, q.retry_count))
                       * (1 - ${p.retryJitter}::float8 * random()) * interval '1 millisecond'
          else q.run_after end,
        completed_at = case when q.retry_count < q.max_retries then null else now() end,
        worker_id = case when q.retry_count < q.max_retries then null else q.worker_id end,
        retry_count = q.retry_count + case when q.retry_count < q.max_retries then 1 else 0 end,
        error_message = ${reason}, updated_at = now()`;
}
