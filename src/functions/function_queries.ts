/** SQL on jobs.functions: one statement per function. */
import type { Sql, Tx } from "../db/pool.ts";

/** What a deploy writes; version and timestamps are the database's business. */
export interface FunctionWrite {
  name: string;
  namespace: string;
  description: string | null;
  code: string;
  files: Record<string, string>;
  code_hash: string;
  enabled: boolean;
  schedule: string | null;
  schedule_params: unknown;
  timeout_seconds: number;
  max_retries: number;
  progress_timeout_seconds: number | null;
  memory_limit_mb: number | null;
  permissions: Record<string, unknown>;
  require_roles: string[];
  source: "filesystem" | "api" | "sync";
  source_path: string | null;
}

/** A stored function; `code` and `files` only when asked for (they can be large). */
export interface FunctionRow extends Omit<FunctionWrite, "code" | "files"> {
  id: string;
  code?: string;
  files?: Record<string, string>;
  version: number;
  next_run_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const META = `id, name, namespace, description, code_hash, version, enabled, schedule,
  schedule_params, next_run_at, timeout_seconds, max_retries, progress_timeout_seconds,
  memory_limit_mb, permissions, require_roles, source, source_path, created_at, updated_at`;

type Q = Sql | Tx;

export async function functionGet(
  q: Q,
  namespace: string,
  name: string,
  withCode = false,
): Promise<FunctionRow | null> {
  const [row] = await q.unsafe<FunctionRow[]>(
    `select ${META}${withCode ? ", code, files" : ""} from jobs.functions
     where namespace = $1 and name = $2`,
    [namespace, name],
  );
  return row ?? null;
}

export async function functionGetById(q: Q, id: string): Promise<FunctionRow | null> {
  const [row] = await q.unsafe<FunctionRow[]>(`select ${META} from jobs.functions where id = $1`, [
    id,
  ]);
  return row ?? null;
}

export async function functionList(q: Q, namespace: string | null): Promise<FunctionRow[]> {
  return await q.unsafe<FunctionRow[]>(
    `select ${META} from jobs.functions where $1::text is null or namespace = $1
     order by namespace, name`,
    [namespace],
  );
}

/**
 * Inserts, or updates in place; the version goes up only when the code, its modules or its
 * settings changed, so re-syncing identical files is a no-op. Returns the row and what
 * happened.
 */
export async function functionUpsert(
  q: Q,
  f: FunctionWrite,
): Promise<{ row: FunctionRow; action: "created" | "updated" | "unchanged" }> {
  const [row] = await q.unsafe<(FunctionRow & { action: string })[]>(
    `with old as (
       select id, code_hash, enabled, schedule, schedule_params, timeout_seconds, max_retries,
         progress_timeout_seconds, memory_limit_mb, permissions, require_roles, description
       from jobs.functions where namespace = $2 and name = $1
     ), up as (
       insert into jobs.functions as f (name, namespace, description, code, files, code_hash,
         enabled, schedule, schedule_params, timeout_seconds, max_retries,
         progress_timeout_seconds, memory_limit_mb, permissions, require_roles, source,
         source_path, next_run_at)
       values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14::jsonb,
         $15::text[], $16, $17, null)
       on conflict (namespace, name) do update set
         description = excluded.description, code = excluded.code, files = excluded.files,
         code_hash = excluded.code_hash, enabled = excluded.enabled,
         schedule = excluded.schedule, schedule_params = excluded.schedule_params,
         timeout_seconds = excluded.timeout_seconds, max_retries = excluded.max_retries,
         progress_timeout_seconds = excluded.progress_timeout_seconds,
         memory_limit_mb = excluded.memory_limit_mb, permissions = excluded.permissions,
         require_roles = excluded.require_roles, source = excluded.source,
         source_path = excluded.source_path,
         version = f.version + 1, updated_at = now(),
         -- a new schedule is recomputed by the scheduler
         next_run_at = case when f.schedule is distinct from excluded.schedule then null
                            else f.next_run_at end
       where (f.code_hash, f.enabled, f.schedule, f.schedule_params, f.timeout_seconds,
              f.max_retries, f.progress_timeout_seconds, f.memory_limit_mb, f.permissions,
              f.require_roles, f.description)
         is distinct from
             (excluded.code_hash, excluded.enabled, excluded.schedule, excluded.schedule_params,
              excluded.timeout_seconds, excluded.max_retries, excluded.progress_timeout_seconds,
              excluded.memory_limit_mb, excluded.permissions, excluded.require_roles,
              excluded.description)
       returning ${META.split(",").map((c) => `f.${c.trim()}`).join(", ")}
     )
     select up.*, case when (select count(*) from old) = 0 then 'created' else 'updated' end
       as action from up
     union all
     select ${META.split(",").map((c) => `f.${c.trim()}`).join(", ")}, 'unchanged'
     from jobs.functions f where namespace = $2 and name = $1
       and not exists (select 1 from up)`,
    [
      f.name,
      f.namespace,
      f.description,
      f.code,
      f.files,
      f.code_hash,
      f.enabled,
      f.schedule,
      f.schedule_params ?? null,
      f.timeout_seconds,
      f.max_retries,
      f.progress_timeout_seconds,
      f.memory_limit_mb,
      f.permissions,
      f.require_roles,
      f.source,
      f.source_path,
    ] as never[],
  );
  const { action, ...rest } = row;
  return { row: rest as FunctionRow, action: action as "created" | "updated" | "unchanged" };
}

export async function functionSetEnabled(
  q: Q,
  namespace: string,
  name: string,
  enabled: boolean,
): Promise<FunctionRow | null> {
  const [row] = await q.unsafe<FunctionRow[]>(
    `update jobs.functions set enabled = $3, updated_at = now()
     where namespace = $1 and name = $2 returning ${META}`,
    [namespace, name, enabled],
  );
  return row ?? null;
}

export async function functionDelete(q: Q, namespace: string, name: string): Promise<boolean> {
  const rows = await q`delete from jobs.functions where namespace = ${namespace} and name = ${name}
    returning id`;
  return rows.length > 0;
}

export async function functionNames(q: Q, namespace: string): Promise<string[]> {
  const rows = await q<{ name: string }[]>`
    select name from jobs.functions where namespace = ${namespace} order by name`;
  return rows.map((r) => r.name);
}
