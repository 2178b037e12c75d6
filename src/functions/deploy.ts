/**
 * Storing job functions: from the admin API (code in a request), from `jobs/` at boot, and
 * the sync API (a directory or a list of files). Annotations are parsed from the code; the
 * version goes up only when something changed, so running workers finish on the version
 * they started and the next claim runs the new one.
 */
import { resolve, sep } from "node:path";
import type { JobsConfig } from "../config.ts";
import type { Sql, Tx } from "../db/pool.ts";
import { BadRequestError } from "../errors.ts";
import { type FunctionAnnotations, parseAnnotations } from "./annotations.ts";
import {
  functionDelete,
  functionNames,
  type FunctionRow,
  functionUpsert,
  type FunctionWrite,
} from "./function_queries.ts";
import type { Permissions } from "../isolate/types.ts";
import type { LoadedFunction } from "./loader.ts";

/** Settings from the server's configuration that a deploy needs. */
export type FunctionDefaults = Pick<JobsConfig, "defaultTimeoutSeconds" | "defaultMaxRetries"> & {
  /** The server's data directory, which no job may be granted (see assertGrantsAvoid). */
  dataDir: string;
};

export interface FunctionSource {
  name: string;
  /** Namespace asked for by the caller; `@fluxbase:namespace` in the code wins over it. */
  namespace: string;
  code: string;
  files?: Record<string, string>;
  /** Explicit enabled flag of an API request; otherwise the annotation, otherwise true. */
  enabled?: boolean;
  source: FunctionWrite["source"];
  sourcePath?: string | null;
  /** Already parsed (the loader did it); parsed from `code` when absent. */
  annotations?: FunctionAnnotations;
}

async function hashOf(code: string, files: Record<string, string>): Promise<string> {
  const sorted = Object.keys(files).sort().map((k) => [k, files[k]]);
  const bytes = new TextEncoder().encode(JSON.stringify([code, sorted]));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Parses and validates a function into the row to write; bad annotations are a 400. */
export async function prepareFunction(
  src: FunctionSource,
  defaults: FunctionDefaults,
): Promise<FunctionWrite> {
  let annotations = src.annotations;
  if (!annotations) {
    const parsed = parseAnnotations(src.code, src.sourcePath ?? `${src.name}.ts`);
    if (!parsed.ok) {
      throw new BadRequestError(
        `Function "${src.name}" has invalid annotations: ${parsed.errors.join("; ")}`,
        { errors: parsed.errors },
        "invalid_annotations",
      );
    }
    annotations = parsed.annotations;
  }
  assertGrantsAvoid(src.name, annotations.permissions, defaults.dataDir);
  const files = src.files ?? {};
  return {
    name: src.name,
    namespace: annotations.namespace ?? src.namespace,
    description: annotations.description ?? null,
    code: src.code,
    files,
    code_hash: await hashOf(src.code, files),
    enabled: src.enabled ?? annotations.enabled ?? true,
    schedule: annotations.schedule ?? null,
    schedule_params: annotations.scheduleParams ?? null,
    timeout_seconds: annotations.timeoutSeconds ?? defaults.defaultTimeoutSeconds,
    max_retries: annotations.maxRetries ?? defaults.defaultMaxRetries,
    progress_timeout_seconds: annotations.progressTimeoutSeconds ?? null,
    memory_limit_mb: annotations.memoryLimitMb ?? null,
    permissions: annotations.permissions as Record<string, unknown>,
    require_roles: annotations.requireRoles ?? [],
    source: src.source,
    source_path: src.sourcePath ?? null,
  };
}

/**
 * Worker processes run with the data directory (generated JWT secret, database password)
 * denied, and Deno refuses to create an isolate whose path grant covers a denied path ("Can't
 * escalate parent thread permissions"). Refuse such a function when it is deployed, with a
 * reason, rather than let every run of it fail. A bare grant (all paths) is fine: the deny
 * still holds inside it.
 */
function assertGrantsAvoid(name: string, permissions: Permissions, dataDir: string) {
  const denied = resolve(dataDir);
  for (const kind of ["read", "write"] as const) {
    const grant = permissions[kind];
    if (!Array.isArray(grant)) continue;
    for (const path of grant) {
      const granted = resolve(path);
      if (
        denied === granted || denied.startsWith(granted.endsWith(sep) ? granted : granted + sep)
      ) {
        throw new BadRequestError(
          `Function "${name}": @fluxbase:allow-${kind} "${path}" includes the server's data ` +
            `directory (${denied}), which no job may access; grant a narrower path`,
          undefined,
          "invalid_annotations",
        );
      }
    }
  }
}

export async function deployFunction(
  q: Sql | Tx,
  src: FunctionSource,
  defaults: FunctionDefaults,
): Promise<{ row: FunctionRow; action: "created" | "updated" | "unchanged" }> {
  return await functionUpsert(q, await prepareFunction(src, defaults));
}

export interface SyncOptions {
  namespace: string;
  functions: FunctionSource[];
  /** Errors found before deploying (files that did not load); reported, never deployed. */
  loadErrors?: { file: string; message: string }[];
  deleteMissing: boolean;
  dryRun: boolean;
}

export interface SyncReport {
  summary: { created: number; updated: number; deleted: number; unchanged: number; errors: number };
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
  errors: { name?: string; file?: string; error: string }[];
  dry_run: boolean;
}

/**
 * Deploys every function in one transaction (`inTransaction`: the caller's RLS transaction, or
 * a plain one at boot; a dry run rolls it back), so a sync either
 * lands whole or not at all; a function with bad annotations is reported and skipped.
 */
export async function syncFunctions(
  inTransaction: (fn: (tx: Tx) => Promise<void>) => Promise<void>,
  options: SyncOptions,
  defaults: FunctionDefaults,
): Promise<SyncReport> {
  const report: SyncReport = {
    summary: { created: 0, updated: 0, deleted: 0, unchanged: 0, errors: 0 },
    created: [],
    updated: [],
    deleted: [],
    unchanged: [],
    errors: (options.loadErrors ?? []).map((e) => ({ file: e.file, error: e.message })),
    dry_run: options.dryRun,
  };
  const DRY_RUN = new Error("dry run");
  try {
    await inTransaction(async (tx) => {
      const seen = new Set<string>();
      for (const src of options.functions) {
        let write: FunctionWrite;
        try {
          write = await prepareFunction(src, defaults);
        } catch (e) {
          report.errors.push({ name: src.name, error: (e as Error).message });
          continue;
        }
        seen.add(`${write.namespace}/${write.name}`);
        const { action } = await functionUpsert(tx, write);
        report[action].push(
          write.namespace === options.namespace ? write.name : `${write.namespace}/${write.name}`,
        );
      }
      // Never delete because of a file that failed to load: it may be a typo being fixed.
      const failed = new Set(report.errors.map((e) => e.name).filter(Boolean));
      if (options.deleteMissing) {
        for (const name of await functionNames(tx, options.namespace)) {
          if (seen.has(`${options.namespace}/${name}`) || failed.has(name)) continue;
          await functionDelete(tx, options.namespace, name);
          report.deleted.push(name);
        }
      }
      if (options.dryRun) throw DRY_RUN;
    });
  } catch (e) {
    if (e !== DRY_RUN) throw e;
  }
  report.summary = {
    created: report.created.length,
    updated: report.updated.length,
    deleted: report.deleted.length,
    unchanged: report.unchanged.length,
    errors: report.errors.length,
  };
  return report;
}

/** LoadedFunction (from loader.ts) as a deploy source. */
export function fromLoaded(
  f: LoadedFunction,
  source: FunctionWrite["source"],
  namespace: string,
): FunctionSource {
  return {
    name: f.name,
    namespace: f.annotations.namespace ?? namespace,
    code: f.code,
    files: f.files,
    source,
    sourcePath: f.sourcePath,
    annotations: f.annotations,
  };
}
