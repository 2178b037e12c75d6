/** Statements of the cron scheduler on `jobs.functions` (next_run_at) and `jobs.queue`. */
import type { Sql } from "../db/pool.ts";

export interface ScheduledFunction {
  id: string;
  name: string;
  namespace: string;
  schedule: string;
  next_run_at: Date | null;
  /** Database time of the read, so all schedulers judge "due" by one clock. */
  now: Date;
}

export function functionListScheduled(sql: Sql): Promise<ScheduledFunction[]> {
  return sql<ScheduledFunction[]>`
    select id, name, namespace, schedule, next_run_at, now() as now from jobs.functions
    where enabled and schedule is not null and schedule <> ''`;
}

/** Clears next_run_at of functions that are disabled or no longer scheduled. */
export async function functionClearUnscheduled(sql: Sql): Promise<void> {
  await sql`
    update jobs.functions set next_run_at = null
    where next_run_at is not null and (not enabled or schedule is null or schedule = '')`;
}

// next_run_at is compared at millisecond precision: JavaScript dates have no microseconds,
// and a value written by now() elsewhere would otherwise never match what we read.

/**
 * Sets next_run_at when it still is `seen`: several schedulers may compute the same value,
 * only one write lands and the others change nothing.
 */
export async function functionSetNextRunIf(
  sql: Sql,
  id: string,
  seen: Date | null,
  next: Date | null,
): Promise<void> {
  await sql`
    update jobs.functions set next_run_at = ${next}
    where id = ${id}
      and date_trunc('milliseconds', next_run_at) is not distinct from ${seen}::timestamptz`;
}

/**
 * Claims the tick `seen` of function `id` and enqueues its run in one statement: the
 * conditional UPDATE of next_run_at is the claim, so with several API processes exactly one
 * inserts the job, and a crash cannot claim a tick without enqueuing it. The job runs as the
 * system (no user, service_role) with the function's schedule_params as payload.
 */
export async function jobInsertScheduledTick(
  sql: Sql,
  id: string,
  seen: Date,
  next: Date | null,
): Promise<string | null> {
  const rows = await sql<{ id: string }[]>`
    with tick as (
      update jobs.functions set next_run_at = ${next}
      where id = ${id} and date_trunc('milliseconds', next_run_at) = ${seen}::timestamptz and enabled
      returning id, version, name, namespace, schedule_params, max_retries, timeout_seconds,
        progress_timeout_seconds
    )
    insert into jobs.queue (function_id, function_version, job_name, namespace, payload,
      max_retries, timeout_seconds, progress_timeout_seconds, created_by, user_role, user_email)
    select id, version, name, namespace,
      case when jsonb_typeof(schedule_params) = 'object' then schedule_params
           else '{}'::jsonb end,
      max_retries, timeout_seconds, progress_timeout_seconds, null, 'service_role', null
    from tick
    returning id`;
  return rows[0]?.id ?? null;
}
