/**
 * The HTTP application: routes and middleware, no listening, so tests can call
 * `app.request()` and worker processes can answer job platform calls in-process.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { authenticate, type AuthEnv } from "../auth/middleware.ts";
import type { TokenVerifier } from "../auth/jwt.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/pool.ts";
import { AppError, ForbiddenError, NotFoundError, PayloadTooLargeError } from "../errors.ts";
import { errorResponse } from "./errors.ts";
import { adminFunctionRoutes } from "./routes/admin_functions.ts";
import { adminJobRoutes } from "./routes/admin_jobs.ts";
import { jobRoutes } from "./routes/jobs.ts";

export interface AppDeps {
  config: Config;
  sql: Sql;
  verifier: TokenVerifier;
  /** The realtime hub; absent in processes that serve no WebSockets (workers). */
  realtime?: { handleUpgrade(req: Request): Response | Promise<Response> };
}

export function createApp(deps: AppDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.onError(errorResponse);
  app.notFound(() => {
    throw new NotFoundError("No such route");
  });

  // Browsers call the API from other origins (the SDK runs in pages); tokens travel in
  // headers, so no credentials mode is needed. WebSockets are not subject to CORS.
  const origins = deps.config.corsOrigins;
  app.use(
    "/api/*",
    cors({
      origin: origins.includes("*") ? "*" : origins,
      allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
      allowHeaders: ["authorization", "apikey", "content-type", "x-client-info"],
      maxAge: 600,
    }),
  );

  app.get("/health", async (c) => {
    try {
      await deps.sql`select 1`;
      return c.json({ status: "ok", database: "ok" });
    } catch {
      return c.json({ status: "unavailable", database: "unreachable" }, 503);
    }
  });

  app.get("/realtime", (c) => {
    if (!deps.realtime) throw new NotFoundError("Realtime is not served by this process");
    // Browsers send Origin on WebSocket upgrades but apply no CORS to them: check it here.
    const origin = c.req.header("origin");
    if (origin && !origins.includes("*") && !origins.includes(origin)) {
      throw new ForbiddenError(`Origin "${origin}" is not allowed (FLUXBASE_CORS_ORIGINS)`);
    }
    return deps.realtime.handleUpgrade(c.req.raw);
  });

  const limit = deps.config.bodyLimitBytes;
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: limit,
      onError: () => {
        throw new PayloadTooLargeError(limit);
      },
    }),
  );
  app.use("/api/*", authenticate(deps.verifier));
  if (!deps.config.jobs.enabled) {
    // FLUXBASE_JOBS_ENABLED=false: the server runs, the jobs API says why it is not there.
    app.use("/api/v1/*", () => {
      throw new AppError(
        503,
        "jobs_disabled",
        "Background jobs are disabled on this server (FLUXBASE_JOBS_ENABLED=false)",
      );
    });
  }
  app.route("/api/v1/jobs", jobRoutes(deps.sql));
  app.route("/api/v1/admin/jobs", adminJobRoutes(deps.sql));
  app.route("/api/v1/admin/jobs", adminFunctionRoutes(deps.sql, deps.config));
  return app;
}
