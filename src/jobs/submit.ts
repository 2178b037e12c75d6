/**
 * Submitting a job: look up the function, enforce `enabled` and `require-role`, then insert
 * the row as the caller so the INSERT policy (created_by = auth.uid()) has the last word.
 */
import type { AuthContext } from "../auth/context.ts";
import { asUser } from "../db/as_user.ts";
import type { Sql } from "../db/pool.ts";
import { ForbiddenError, NotFoundError, UnauthorizedError } from "../errors.ts";
import { functionGet, type FunctionRow } from "../functions/function_queries.ts";
import { type Job, type JobInsert, jobInsert } from "./job_queries.ts";

export interface SubmitInput {
  job_name: string;
  namespace?: string;
  payload?: unknown;
  priority?: number;
  scheduled_at?: Date | null;
  /** Service role only: the user the job runs for. */
  on_behalf_of?: { user_id: string; email?: string | null; role?: string | null } | null;
}

/** The user a job belongs to. */
export interface JobOwner {
  id: string | null;
  email: string | null;
  role: string;
}

export async function submitJob(sql: Sql, auth: AuthContext, input: SubmitInput): Promise<Job> {
  const namespace = input.namespace ?? "default";
  if (auth.dbRole === "anon") {
    throw new UnauthorizedError(
      `Cannot submit job "${input.job_name}": anonymous callers cannot own jobs; sign in first`,
    );
  }
  if (input.on_behalf_of && auth.role !== "service_role") {
    throw new ForbiddenError("on_behalf_of can only be used with the service role");
  }
  const fn = await functionGet(sql, namespace, input.job_name);
  if (!fn) {
    throw new NotFoundError(
      `Job function "${input.job_name}" not found in namespace "${namespace}"`,
      "function_not_found",
    );
  }
  if (!fn.enabled) {
    throw new ForbiddenError(
      `Cannot submit job "${input.job_name}": function is disabled`,
      undefined,
      "function_disabled",
    );
  }
  const owner: JobOwner = input.on_behalf_of
    ? {
      id: input.on_behalf_of.user_id,
      email: input.on_behalf_of.email ?? null,
      role: input.on_behalf_of.role ?? "authenticated",
    }
    : { id: auth.userId, email: auth.email, role: auth.role };
  assertRoleAllowed(fn, auth.role, input.job_name);
  return await asUser(
    sql,
    auth,
    (tx) =>
      jobInsert(tx, newJob(fn, owner, input.payload, input.priority ?? 0, input.scheduled_at)),
  );
}

/** The row of a new pending job of `fn` owned by `owner`: limits come from the function. */
export function newJob(
  fn: FunctionRow,
  owner: JobOwner,
  payload: unknown,
  priority: number,
  scheduledAt: Date | null = null,
): JobInsert {
  return {
    function_id: fn.id,
    function_version: fn.version,
    job_name: fn.name,
    namespace: fn.namespace,
    payload: payload ?? null,
    priority,
    created_by: owner.id,
    user_role: owner.role,
    user_email: owner.email,
    max_retries: fn.max_retries,
    timeout_seconds: fn.timeout_seconds,
    progress_timeout_seconds: fn.progress_timeout_seconds,
    scheduled_at: scheduledAt,
  };
}

/**
 * `@fluxbase:require-role a, b` means any of them. service_role may submit anything;
 * "authenticated" is met by every signed-in role.
 */
export function assertRoleAllowed(fn: FunctionRow, role: string, jobName: string): void {
  const required = fn.require_roles;
  if (required.length === 0 || role === "service_role" || required.includes(role)) return;
  if (required.includes("authenticated") && role !== "anon") return;
  throw new ForbiddenError(
    `Cannot submit job "${jobName}": it requires role ${
      required.join(" or ")
    }; your role is ${role}`,
    { required_roles: required },
    "insufficient_role",
  );
}
