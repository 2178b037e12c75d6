/**
 * Answers a job's platform calls (`fluxbase`, `fluxbaseService` inside the isolate) by calling
 * the REST app in-process: no network, so a job without `allow-net` keeps its platform API,
 * and the same routes, validation and RLS apply as for any client. Each call carries a
 * short-lived token of the job's user (or of the service role); headers the job set itself
 * cannot replace that identity.
 */
import { createTokenVerifier, signToken } from "../auth/jwt.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/pool.ts";
import { coerceError } from "../errors.ts";
import { createApp } from "../http/app.ts";
import type { PlatformRequest, PlatformResponse } from "../isolate/types.ts";
import type { ClaimedJob } from "../queue/job_queries.ts";
import type { PlatformHandler } from "./job_worker.ts";

/** Lifetime of the token of one platform call. */
const TOKEN_TTL = "5m";
/** Headers a job may not set: they carry identity. */
const IDENTITY_HEADERS = new Set(["authorization", "apikey", "cookie"]);

export interface PlatformOptions {
  config: Config;
  sql: Sql;
  jwtSecret: string;
}

export function createPlatformHandler(opts: PlatformOptions): PlatformHandler {
  const verifier = createTokenVerifier({
    secret: opts.jwtSecret,
    jwksUrl: null,
    clockToleranceSeconds: opts.config.jwtClockToleranceSeconds,
  });
  const app = createApp({ config: opts.config, sql: opts.sql, verifier });
  return async (job: ClaimedJob, req: PlatformRequest): Promise<PlatformResponse> => {
    try {
      const token = await signToken(opts.jwtSecret, claimsFor(job, req.client), TOKEN_TTL);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (!IDENTITY_HEADERS.has(name.toLowerCase())) headers.set(name, value);
      }
      headers.set("authorization", `Bearer ${token}`);
      headers.set("x-fluxbase-job-id", job.id);
      const url = new URL(req.path, "http://fluxbase.internal");
      const res = await app.fetch(
        new Request(url, {
          method: req.method,
          headers,
          body: req.body === null || req.method === "GET" || req.method === "HEAD"
            ? undefined
            : req.body,
        }),
      );
      return {
        status: res.status,
        headers: Object.fromEntries(res.headers),
        body: await res.text(),
      };
    } catch (e) {
      return {
        status: 500,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ error: coerceError(e).message, code: "platform_error" }),
      };
    }
  };
}

/** The identity of a platform call: the submitting user, or the service role. */
export function claimsFor(job: ClaimedJob, client: "user" | "service"): Record<string, unknown> {
  if (client === "service" || job.user_role === "service_role") return { role: "service_role" };
  if (!job.created_by) return { role: "anon" };
  const claims: Record<string, unknown> = {
    sub: job.created_by,
    role: job.user_role ?? "authenticated",
  };
  if (job.user_email) claims.email = job.user_email;
  return claims;
}
