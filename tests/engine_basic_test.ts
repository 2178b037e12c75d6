import assert from "node:assert/strict";
import { insertFunction, submitJobs } from "./fixtures/engine/db.ts";
import { getJob, startEngine, waitForStatus } from "./fixtures/engine/harness.ts";

const BASIC = `
export async function handler(req, fluxbase, fluxbaseService, job) {
  const context = job.getJobContext();
  const { items } = context.payload;
  console.log("Running for user:", context.user?.email);
  for (let i = 0; i < items.length; i++) {
    const percent = Math.floor(((i + 1) / items.length) * 100);
    job.reportProgress(percent, \`Processed \${i + 1}/\${items.length}\`);
  }
  return { success: true, processed: items.length, retry: context.retry_count };
}`;

Deno.test("a submitted job runs in an isolate and records result, progress and logs", async () => {
  const engine = await startEngine();
  try {
    const { sql } = engine.db;
    await insertFunction(sql, { name: "process-data", code: BASIC });
    const [id] = await submitJobs(sql, "process-data", [{ items: [1, 2, 3, 4, 5] }], {
      userId: "user-1",
      email: "a@example.com",
    });
    const job = await waitForStatus(sql, id, ["completed", "failed"]);
    assert.equal(job.status, "completed", job.error_message ?? "");
    assert.deepEqual(job.result, { success: true, processed: 5, retry: 0 });
    assert.equal(job.progress?.percent, 100);
    assert.equal(job.progress?.message, "Processed 5/5");
    assert.equal(job.worker_id, engine.worker.id);
    assert.match(job.logs ?? "", /Running for user: a@example\.com/);
    const lines = await sql`select line_number, level, message from jobs.logs where job_id = ${id}`;
    assert.equal(lines.length, 1);
    assert.equal(lines[0].line_number, 1);
  } finally {
    await engine.stop();
  }
});

Deno.test("jobs are claimed by priority, then age, and all complete exactly once", async () => {
  const engine = await startEngine({ FLUXBASE_JOBS_MAX_CONCURRENT_PER_WORKER: "1" });
  try {
    const { sql } = engine.db;
    await insertFunction(sql, {
      name: "order",
      code: "export function handler(req, a, b, job) { return job.getJobPayload(); }",
    });
    await engine.worker.stop(0);
    const low = await submitJobs(sql, "order", [{ n: 1 }, { n: 2 }]);
    const [high] = await submitJobs(sql, "order", [{ n: 3 }], { priority: 10 });
    const w = await engine.addWorker();
    for (const id of [...low, high]) await waitForStatus(sql, id, ["completed"]);
    const rows = await sql<{ id: string }[]>`
      select id from jobs.queue order by started_at`;
    assert.equal(rows[0].id, high);
    assert.deepEqual(rows.slice(1).map((r) => r.id).sort(), [...low].sort());
    assert.equal((await getJob(sql, high)).worker_id, w.id);
  } finally {
    await engine.stop();
  }
});
