/**
 * The per-job actions that the user routes (`/api/v1/jobs/:id/...`) and the admin routes
 * (`/api/v1/admin/jobs/queue/:id/...`) share. Both run under the caller's claims, so the same
 * handler serves a user acting on their own job and an admin acting on anyone's.
 */
import type { Hono } from "hono";
import type { AuthEnv } from "../../auth/middleware.ts";
import type { Sql } from "../../db/pool.ts";
import { cancelJob, copyJob, getJob } from "../../jobs/operations.ts";

type Action = "cancel" | "terminate" | "retry" | "resubmit";

export function mountJobActions(
  app: Hono<AuthEnv>,
  sql: Sql,
  prefix: string,
  actions: Action[],
): void {
  app.get(
    `${prefix}/:id`,
    async (c) => c.json(await getJob(sql, c.get("auth"), c.req.param("id"))),
  );
  for (const action of actions) {
    app.post(`${prefix}/:id/${action}`, async (c) => {
      const auth = c.get("auth");
      const id = c.req.param("id");
      if (action === "cancel" || action === "terminate") {
        return c.json(await cancelJob(sql, auth, id, action));
      }
      return c.json(await copyJob(sql, auth, id, action), 201);
    });
  }
}
