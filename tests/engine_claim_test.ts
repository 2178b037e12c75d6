import assert from "node:assert/strict";
import { insertFunction, submitJobs } from "./fixtures/engine/db.ts";
import { startEngine, waitFor } from "./fixtures/engine/harness.ts";

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
