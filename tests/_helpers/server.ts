/**
 * A real server for tests: its own migrated database, port 0 on loopback, a fixed random
 * JWT secret, and tokens minted for any user.
 */
import { signToken } from "../../src/auth/jwt.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import type { Sql } from "../../src/db/pool.ts";
import { startServer } from "../../src/server.ts";
import { createTestDatabase } from "./db.ts";

export interface TestServer {
  url: string;
  config: Config;
  /** Superuser pool on the server's database, for arranging and checking rows. */
  sql: Sql;
  databaseUrl: string;
  jwtSecret: string;
  anonKey: string;
  serviceKey: string;
  /** A user token (HS256, default role "authenticated", expires in 1 h). */
  token(
    opts: { sub: string; role?: string; email?: string; expiresIn?: string | number },
  ): Promise<string>;
  /** fetch against the server with an optional bearer token and JSON body. */
  request(
    method: string,
    path: string,
    opts?: { token?: string; body?: unknown; headers?: Record<string, string> },
    // deno-lint-ignore no-explicit-any -- tests read arbitrary JSON fields
  ): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  /** Embedded worker processes; 0 (default) runs none. */
  workers?: number;
  jobsDir?: string;
  env?: Record<string, string>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const db = await createTestDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "fluxbase-test-" });
  const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
  const config = loadConfig({
    file: null,
    env: {
      FLUXBASE_HOST: "127.0.0.1",
      FLUXBASE_PORT: "0",
      FLUXBASE_DATA_DIR: dataDir,
      DATABASE_URL: db.url,
      FLUXBASE_AUTH_JWT_SECRET: jwtSecret,
      FLUXBASE_JOBS_DIR: options.jobsDir ?? new URL("../../jobs", import.meta.url).pathname,
      FLUXBASE_JOBS_EMBEDDED_WORKER_COUNT: String(options.workers ?? 0),
      FLUXBASE_JOBS_WORKER_MODE: (options.workers ?? 0) > 0 ? "embedded" : "disabled",
      FLUXBASE_JOBS_POLL_INTERVAL: "200ms",
      ...options.env,
    },
  });
  let server;
  try {
    server = await startServer(config, { log: () => {} });
  } catch (e) {
    await db.drop();
    throw e;
  }
  const url = server.url;
  return {
    url,
    config,
    sql: db.sql,
    databaseUrl: db.url,
    jwtSecret,
    anonKey: server.anonKey,
    serviceKey: server.serviceKey,
    token: ({ sub, role = "authenticated", email, expiresIn = "1h" }) =>
      signToken(jwtSecret, { sub, role, ...(email ? { email } : {}) }, expiresIn),
    async request(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      let body: string | undefined;
      if (opts.body !== undefined) {
        headers["content-type"] = "application/json";
        body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
      }
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch { /* not JSON: keep the text */ }
      return { status: res.status, body: parsed };
    },
    async stop() {
      await server.stop();
      await db.drop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}
