/** Loading a job function's deployed code for a worker. */
import type { Sql } from "../db/pool.ts";
import type { FunctionBundle, Permissions } from "../isolate/types.ts";

/**
 * The stored version of function `id`. `jobs.functions` keeps one row per function, so a job
 * submitted before an update runs the current version; the caller sees which one it got.
 */
export async function functionBundleById(sql: Sql, id: string): Promise<FunctionBundle | null> {
  const rows = await sql<
    {
      id: string;
      name: string;
      namespace: string;
      version: number;
      code: string;
      files: Record<string, string>;
      permissions: Permissions;
      memory_limit_mb: number | null;
    }[]
  >`
    select id, name, namespace, version, code, files, permissions, memory_limit_mb
    from jobs.functions where id = ${id}`;
  if (rows.length === 0) return null;
  const r = rows[0];
  return {
    id: r.id,
    name: r.name,
    namespace: r.namespace,
    version: r.version,
    code: r.code,
    files: r.files ?? {},
    permissions: r.permissions ?? {},
    memoryLimitMb: r.memory_limit_mb,
  };
}
