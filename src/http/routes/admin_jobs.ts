/**
 * Admin routes: `/api/v1/admin/jobs` for admin, dashboard_admin and service_role. Queries
 * still run under the caller's claims: the admin policies of the schema grant the access.
 */
import { Hono } from "hono";
import { z } from "zod";
import { type AuthEnv, requireAdmin } from "../../auth/middleware.ts";
import { asUser } from "../../db/as_user.ts";
import type { Sql } from "../../db/pool.ts";
import {
  JOB_STATUSES,
  jobList,
  jobStats,
  namespacesList,
  workersList,
} from "../../jobs/job_queries.ts";
import { name, pagination, parseQuery } from "../validation.ts";
import { mountJobActions } from "./job_actions.ts";

const queueSchema = z.object({
  status: z.enum(JOB_STATUSES as [string, ...string[]]).optional(),
  namespace: name.optional(),
  job_name: name.optional(),
  worker_id: z.uuid().optional(),
  created_by: z.string().min(1).max(256).optional(),
  ...pagination,
});

export function adminJobRoutes(sql: Sql) {
  const app = new Hono<AuthEnv>();
  app.use("*", requireAdmin);

  app.get("/queue", async (c) => {
    const q = parseQuery(c, queueSchema);
    const { limit, offset, ...filters } = q;
    const { jobs, total } = await asUser(
      sql,
      c.get("auth"),
      (tx) => jobList(tx, filters as never, limit, offset),
    );
    return c.json({ jobs, limit, offset, total });
  });

  mountJobActions(app, sql, "/queue", ["cancel", "terminate", "retry", "resubmit"]);

  app.get("/stats", async (c) => {
    const { namespace } = parseQuery(c, z.object({ namespace: name.optional() }));
    return c.json(await asUser(sql, c.get("auth"), (tx) => jobStats(tx, namespace ?? null)));
  });

  app.get("/workers", async (c) => {
    const { all } = parseQuery(c, z.object({ all: z.enum(["true", "false"]).optional() }));
    const workers = await asUser(sql, c.get("auth"), (tx) => workersList(tx, all === "true"));
    return c.json({ workers: workers.map((w) => ({ ...w, current_jobs: w.current_job_count })) });
  });

  app.get("/namespaces", async (c) => {
    const namespaces = await asUser(sql, c.get("auth"), (tx) => namespacesList(tx));
    return c.json({ namespaces });
  });

  return app;
}
