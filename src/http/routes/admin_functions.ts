/**
 * Job function management: `/api/v1/admin/jobs/functions` and `/sync`. Writes run under the
 * admin's claims (the "Admins can manage functions" policy); a sync `path` must lie inside
 * FLUXBASE_JOBS_DIR.
 */
import { Hono } from "hono";
import { resolve, sep } from "node:path";
import { z } from "zod";
import { type AuthEnv, requireAdmin } from "../../auth/middleware.ts";
import type { Config } from "../../config.ts";
import { asUser } from "../../db/as_user.ts";
import type { Sql } from "../../db/pool.ts";
import { BadRequestError, ForbiddenError, NotFoundError } from "../../errors.ts";
import {
  deployFunction,
  fromLoaded,
  type FunctionDefaults,
  type FunctionSource,
  syncFunctions,
} from "../../functions/deploy.ts";
import {
  functionDelete,
  functionGet,
  functionList,
  functionSetEnabled,
} from "../../functions/function_queries.ts";
import { loadFunctionsDir } from "../../functions/loader.ts";
import { name, parseBody, parseQuery } from "../validation.ts";

const MAX_CODE = 1024 * 1024;
const files = z.record(z.string().min(1).max(512), z.string().max(MAX_CODE));

const createSchema = z.object({
  name,
  namespace: name.default("default"),
  code: z.string().min(1).max(MAX_CODE),
  files: files.optional(),
  enabled: z.boolean().optional(),
  description: z.string().max(2000).optional(),
}).strict();

const updateSchema = z.object({
  code: z.string().min(1).max(MAX_CODE).optional(),
  files: files.optional(),
  enabled: z.boolean().optional(),
}).strict().refine((v) => Object.keys(v).length > 0, "give at least one of code, files, enabled");

const syncSchema = z.object({
  namespace: name.default("default"),
  path: z.string().min(1).max(4096).optional(),
  jobs: z.array(z.object({
    name,
    code: z.string().min(1).max(MAX_CODE),
    files: files.optional(),
    enabled: z.boolean().optional(),
  })).max(1000).optional(),
  options: z.object({
    delete_missing: z.boolean().default(false),
    dry_run: z.boolean().default(false),
  }).default({ delete_missing: false, dry_run: false }),
}).strict();

export function adminFunctionRoutes(sql: Sql, config: Config) {
  const app = new Hono<AuthEnv>();
  const jobs = config.jobs;
  const defaults: FunctionDefaults = { ...jobs, dataDir: config.dataDir };
  app.use("*", requireAdmin);

  app.get("/functions", async (c) => {
    const { namespace } = parseQuery(c, z.object({ namespace: name.optional() }));
    const functions = await asUser(sql, c.get("auth"), (tx) => functionList(tx, namespace ?? null));
    return c.json({ functions });
  });

  app.get("/functions/:namespace/:name", async (c) => {
    const { namespace, name } = c.req.param();
    const fn = await asUser(sql, c.get("auth"), (tx) => functionGet(tx, namespace, name, true));
    if (!fn) throw notFound(namespace, name);
    return c.json(fn);
  });

  app.post("/functions", async (c) => {
    const body = await parseBody(c, createSchema);
    const src: FunctionSource = { ...body, source: "api" };
    const { row, action } = await asUser(
      sql,
      c.get("auth"),
      (tx) => deployFunction(tx, src, defaults),
    );
    return c.json({ ...row, action }, action === "created" ? 201 : 200);
  });

  app.put("/functions/:namespace/:name", async (c) => {
    const { namespace, name } = c.req.param();
    const body = await parseBody(c, updateSchema);
    const row = await asUser(sql, c.get("auth"), async (tx) => {
      const current = await functionGet(tx, namespace, name, true);
      if (!current) throw notFound(namespace, name);
      if (body.code === undefined && body.files === undefined) {
        return await functionSetEnabled(tx, namespace, name, body.enabled!);
      }
      const src: FunctionSource = {
        name,
        namespace,
        code: body.code ?? current.code!,
        files: body.files ?? current.files,
        enabled: body.enabled ?? current.enabled,
        source: "api",
      };
      const { row } = await deployFunction(tx, src, defaults);
      if (row.namespace !== namespace) {
        throw new BadRequestError(
          `The code moves "${name}" to namespace "${row.namespace}"; create it there instead`,
        );
      }
      return row;
    });
    return c.json(row);
  });

  app.delete("/functions/:namespace/:name", async (c) => {
    const { namespace, name } = c.req.param();
    const deleted = await asUser(sql, c.get("auth"), (tx) => functionDelete(tx, namespace, name));
    if (!deleted) throw notFound(namespace, name);
    return c.json({ deleted: true, namespace, name });
  });

  app.post("/sync", async (c) => {
    const body = await parseBody(c, syncSchema);
    let sources: FunctionSource[];
    let loadErrors: { file: string; message: string }[] = [];
    if (body.jobs) {
      sources = body.jobs.map((j) => ({ ...j, namespace: body.namespace, source: "sync" }));
    } else {
      const dir = await insideJobsDir(body.path ?? jobs.dir, jobs.dir);
      const loaded = await loadFunctionsDir(dir);
      sources = loaded.functions.map((f) => fromLoaded(f, "sync", body.namespace));
      loadErrors = loaded.errors;
    }
    const report = await syncFunctions(
      (fn) => asUser(sql, c.get("auth"), fn),
      {
        namespace: body.namespace,
        functions: sources,
        loadErrors,
        deleteMissing: body.options.delete_missing,
        dryRun: body.options.dry_run,
      },
      defaults,
    );
    return c.json(report);
  });

  return app;
}

function notFound(namespace: string, name: string) {
  return new NotFoundError(
    `Job function "${name}" not found in namespace "${namespace}"`,
    "function_not_found",
  );
}

/** Resolves `path` (relative to the jobs dir) and refuses anything outside it. */
async function insideJobsDir(path: string, jobsDir: string): Promise<string> {
  let root: string, target: string;
  try {
    root = await Deno.realPath(jobsDir);
  } catch {
    throw new BadRequestError(`The jobs directory "${jobsDir}" does not exist on the server`);
  }
  try {
    // Relative to the server's working directory, as FLUXBASE_JOBS_DIR is. realPath resolves
    // symlinks too, so a link inside the jobs dir cannot point outside it.
    target = await Deno.realPath(resolve(path));
  } catch {
    throw new BadRequestError(`Sync path "${path}" does not exist on the server`);
  }
  if (target !== root && !target.startsWith(root + sep)) {
    throw new ForbiddenError(
      `Sync path "${path}" is outside the jobs directory (FLUXBASE_JOBS_DIR)`,
      undefined,
      "path_not_allowed",
    );
  }
  return target;
}
