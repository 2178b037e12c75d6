import assert from "node:assert/strict";
import { buildJobEnv, isBlockedEnvName } from "../src/isolate/env.ts";

Deno.test("buildJobEnv: the job's own values, custom FLUXBASE_* variables, no secrets", () => {
  const env = buildJobEnv(
    {
      FLUXBASE_EXTERNAL_API_KEY: "ext-key",
      FLUXBASE_FEATURE_FLAG: "on",
      FLUXBASE_AUTH_JWT_SECRET: "jwt",
      FLUXBASE_DATABASE_URL: "postgres://u:p@h/db",
      DATABASE_URL: "postgres://u:p@h/db",
      FLUXBASE_SERVICE_ROLE_KEY: "srk",
      FLUXBASE_ANON_KEY: "anon",
      FLUXBASE_ENCRYPTION_KEY: "enc",
      FLUXBASE_SMTP_PASSWORD: "pw",
      FLUXBASE_WEBHOOK_SECRET: "whsec",
      FLUXBASE_JOB_ID: "spoofed",
      HOME: "/root",
    },
    { jobId: "job-1", jobName: "process-data", namespace: "default" },
    "http://localhost:8080",
  );
  assert.deepEqual(env, {
    FLUXBASE_EXTERNAL_API_KEY: "ext-key",
    FLUXBASE_FEATURE_FLAG: "on",
    FLUXBASE_URL: "http://localhost:8080",
    FLUXBASE_JOB_ID: "job-1",
    FLUXBASE_JOB_NAME: "process-data",
    FLUXBASE_JOB_NAMESPACE: "default",
    FLUXBASE_JOB_CANCELLED: "false",
  });
});

Deno.test("isBlockedEnvName blocks credentials by name and word, keeps external API keys", () => {
  for (
    const name of [
      "FLUXBASE_AUTH_JWT_SECRET",
      "FLUXBASE_DB_PASSWORD",
      "PGPASSWORD_X_PASSWORD",
      "FLUXBASE_SECRETS_KEY",
      "MY_PRIVATE_KEY",
      "FLUXBASE_AUTH_JWKS_URL",
    ]
  ) {
    assert.equal(isBlockedEnvName(name), true, name);
  }
  for (
    const name of [
      "FLUXBASE_EXTERNAL_API_KEY",
      "FLUXBASE_STRIPE_PUBLISHABLE_KEY",
      "FLUXBASE_JOBS_DIR",
      "FLUXBASE_KEYWORDS",
    ]
  ) {
    assert.equal(isBlockedEnvName(name), false, name);
  }
});
