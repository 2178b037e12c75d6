/**
 * What a caller can do to an existing job: read, cancel, terminate, retry, resubmit, read
 * logs. Each runs under the caller's claims, so a job that RLS hides is simply not found.
 */
import type { AuthContext } from "../auth/context.ts";
import { asUser } from "../db/as_user.ts";
import type { Sql, Tx } from "../db/pool.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "../errors.ts";
import { functionGetById } from "../functions/function_queries.ts";
import { assertRoleAllowed, newJob } from "./submit.ts";
import {
  type Job,
  jobCancelIfActive,
  jobGetById,
  jobInsert,
  jobLogsAfter,
  jobNotifyTerminate,
  type LogLine,
} from "./job_queries.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function visibleJob(tx: Tx, id: string): Promise<Job> {
  // A malformed id cannot name a job: 404, not a database cast error.
  const job = UUID.test(id) ? await jobGetById(tx, id) : null;
  if (!job) throw new NotFoundError(`Job "${id}" not found`, "job_not_found");
  return job;
}

export function getJob(sql: Sql, auth: AuthContext, id: string): Promise<Job> {
  return asUser(sql, auth, (tx) => visibleJob(tx, id));
}

/** Cancel (or, with `terminate`, stop at once without a grace period). */
export function cancelJob(
  sql: Sql,
  auth: AuthContext,
  id: string,
  mode: "cancel" | "terminate" = "cancel",
): Promise<Job> {
  return asUser(sql, auth, async (tx) => {
    const job = await visibleJob(tx, id);
    const message = mode === "terminate" ? `Terminated by ${auth.role}` : null;
    const cancelled = await jobCancelIfActive(tx, job.id, message);
    if (!cancelled) {
      throw new ConflictError(
        `Cannot ${mode} job "${id}": it is already ${job.status}`,
        { status: job.status },
        "invalid_job_state",
      );
    }
    if (mode === "terminate") await jobNotifyTerminate(tx, job.id);
    return cancelled;
  });
}

/**
 * A new pending job with the same function, payload and owner. `retry` takes failed or
 * cancelled jobs; `resubmit` (admin) any finished job.
 */
export async function copyJob(
  sql: Sql,
  auth: AuthContext,
  id: string,
  mode: "retry" | "resubmit",
): Promise<Job> {
  const allowed = mode === "retry" ? ["failed", "cancelled"] : ["completed", "failed", "cancelled"];
  const job = await getJob(sql, auth, id);
  if (!allowed.includes(job.status)) {
    throw new ConflictError(
      `Cannot ${mode} job "${id}": it is ${job.status}; only ${allowed.join(" or ")} jobs can be`,
      { status: job.status },
      "invalid_job_state",
    );
  }
  // Function code and settings are not readable by users under RLS: look them up with the
  // server's connection, as submit does, then insert under the caller's claims.
  const fn = job.function_id ? await functionGetById(sql, job.function_id) : null;
  if (!fn) {
    throw new ConflictError(
      `Cannot ${mode} job "${id}": its function "${job.job_name}" no longer exists`,
      undefined,
      "function_not_found",
    );
  }
  if (!fn.enabled) {
    throw new ForbiddenError(
      `Cannot ${mode} job "${id}": function "${fn.name}" is disabled`,
      undefined,
      "function_disabled",
    );
  }
  assertRoleAllowed(fn, auth.role, fn.name);
  const owner = {
    id: job.created_by,
    email: job.user_email,
    role: job.user_role ?? "authenticated",
  };
  return await asUser(
    sql,
    auth,
    (tx) => jobInsert(tx, newJob(fn, owner, job.payload, job.priority)),
  );
}

export function getJobLogs(
  sql: Sql,
  auth: AuthContext,
  id: string,
  afterLine: number,
  limit: number,
): Promise<LogLine[]> {
  return asUser(sql, auth, async (tx) => {
    await visibleJob(tx, id);
    return await jobLogsAfter(tx, id, afterLine, limit);
  });
}
