import assert from "node:assert/strict";
import { insertFunction, submitJobs } from "./fixtures/engine/db.ts";
import { startEngine, testConfig, waitFor, waitForStatus } from "./fixtures/engine/harness.ts";
import { createTestDatabase } from "./_helpers/db.ts";
import { createPool } from "../src/db/pool.ts";
import { IsolatePool } from "../src/isolate/pool.ts";
import { JobWorker } from "../src/worker/job_worker.ts";

Deno.test("under a binding namespace limit, finished jobs make room at once, not at the next poll", async () => {
  const engine = await startEngine({
    FLUXBASE_JOBS_MAX_CONCURRENT_PER_WORKER: "5",
    FLUXBASE_JOBS_MAX_CONCURRENT_PER_NAMESPACE: "2",
    // Far longer than the test may take: only the freed slots can drive the claims.
    FLUXBASE_JOBS_POLL_INTERVAL: "60s",
  });
  const { sql } = engine.db;
  try {
    await insertFunction(sql, {
      name: "quick",
      code: "export async function handler() { await new Promise((r) => setTimeout(r, 20)); }",
    });
    await submitJobs(sql, "quick", Array.from({ length: 12 }, (_, i) => i));
    let peak = 0;
    await waitFor("all 12 completed", async () => {
      const [row] = await sql`select count(*) filter (where status = 'completed')::int as done,
        count(*) filter (where status = 'running')::int as running from jobs.queue`;
      peak = Math.max(peak, row.running);
      return row.done === 12;
    }, 20_000);
    assert.ok(peak <= 2, `the namespace limit of 2 was exceeded: ${peak} running`);
  } finally {
    await engine.stop();
  }
});

Deno.test("claims run on the claim pool, which commits asynchronously; the other writes stay durable", async () => {
  const db = await createTestDatabase();
  const config = testConfig();
  const claimSql = createPool(db.url, {
    max: 1,
    applicationName: "claims-under-test",
    synchronousCommit: "off",
  });
  const pool = new IsolatePool({ maxIdlePerFunction: config.jobs.maxConcurrentPerWorker });
  const worker = new JobWorker({ sql: db.sql, claimSql, config: config.jobs, executor: pool });
  try {
    const [[claims]] = await claimSql`show synchronous_commit`.values();
    const [[others]] = await db.sql`show synchronous_commit`.values();
    assert.deepEqual([claims, others], ["off", "on"]);

    await insertFunction(db.sql, {
      name: "echo",
      code: "export const handler = (req) => req.json();",
    });
    const [id] = await submitJobs(db.sql, "echo", [{ n: 7 }]);
    await worker.start();
    const job = await waitForStatus(db.sql, id, ["completed"]);
    assert.deepEqual(job.result, { n: 7 });
    // The claim's backend is the claim pool's; no other backend of the worker ran a claim.
    const claimants = await db.sql<{ application_name: string }[]>`
      select application_name from pg_stat_activity
      where datname = current_database() and query like '%jobs.claim_jobs(%'
        and pid <> pg_backend_pid()`;
    assert.deepEqual(claimants.map((c) => c.application_name), ["claims-under-test"]);
  } finally {
    await worker.stop(0);
    await pool.shutdown();
    await claimSql.end();
    await db.drop();
  }
});
