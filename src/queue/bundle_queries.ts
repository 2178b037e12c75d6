/** Loading a job function's deployed code for a worker. */
import type { Sql } from "../db/pool.ts";
import type { FunctionBundle } from "../isolate/types.ts";

/**
 * The stored version of function `id`. `jobs.functions` keeps one row per function, so a job
 * submitted before an update runs the current version; the caller sees which one it got.
 */
export async function functionBundleById(sql: Sql, id: string): Promise<FunctionBundle | null> {
  const [bundle] = await sql<FunctionBundle[]>`
    select id, name, namespace, version, code, coalesce(files, '{}') as files,
      coalesce(permissions, '{}') as permissions, memory_limit_mb as "memoryLimitMb"
    from jobs.functions where id = ${id}`;
  return bundle ?? null;
}
