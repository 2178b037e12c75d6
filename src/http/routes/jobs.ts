/** User routes: `/api/v1/jobs`. Any authenticated role; data access under RLS. */
import { Hono } from "hono";
import { z } from "zod";
import type { AuthEnv } from "../../auth/middleware.ts";
import { asUser } from "../../db/as_user.ts";
import type { Sql } from "../../db/pool.ts";
import { JOB_STATUSES, jobList } from "../../jobs/job_queries.ts";
import { getJobLogs } from "../../jobs/operations.ts";
import { submitJob } from "../../jobs/submit.ts";
import { name, pagination, parseBody, parseQuery } from "../validation.ts";
import { mountJobActions } from "./job_actions.ts";

const onBehalfOf = z.union([
  z.string().min(1).max(256).transform((user_id) => ({ user_id })),
  z.object({
    user_id: z.string().min(1).max(256),
    email: z.string().max(320).nullish(),
    role: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).nullish(),
  }),
]);

export const submitSchema = z.object({
  job_name: name,
  namespace: name.optional(),
  payload: z.unknown().optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
  scheduled_at: z.iso.datetime({ offset: true }).transform((s) => new Date(s)).nullish(),
  on_behalf_of: onBehalfOf.nullish(),
}).strict();

const listSchema = z.object({
  status: z.enum(JOB_STATUSES as [string, ...string[]]).optional(),
  namespace: name.optional(),
  job_name: name.optional(),
  ...pagination,
});

const logsSchema = z.object({
  after_line: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

export function jobRoutes(sql: Sql) {
  const app = new Hono<AuthEnv>();

  app.post("/submit", async (c) => {
    const input = await parseBody(c, submitSchema);
    const job = await submitJob(sql, c.get("auth"), input);
    return c.json(job, 201);
  });

  app.get("/", async (c) => {
    const q = parseQuery(c, listSchema);
    const auth = c.get("auth");
    // "My jobs": even an admin, whom RLS lets see everything, lists their own here; the
    // admin queue route lists everyone's.
    const created_by = auth.userId ?? undefined;
    const { jobs, total } = await asUser(sql, auth, (tx) =>
      jobList(
        tx,
        { status: q.status as never, namespace: q.namespace, job_name: q.job_name, created_by },
        q.limit,
        q.offset,
      ));
    return c.json({ jobs, limit: q.limit, offset: q.offset, total });
  });

  mountJobActions(app, sql, "", ["cancel", "retry"]);

  app.get("/:id/logs", async (c) => {
    const q = parseQuery(c, logsSchema);
    const logs = await getJobLogs(sql, c.get("auth"), c.req.param("id"), q.after_line, q.limit);
    return c.json({ logs, count: logs.length });
  });

  return app;
}
