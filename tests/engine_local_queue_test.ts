/**
 * The local queue (jobs.local_queue_size): off by default, so a busy worker leaves waiting
 * jobs to idle ones; when on, every job still runs exactly once.
 */
import assert from "node:assert/strict";
import { insertFunction, submitJobs } from "./fixtures/engine/db.ts";
import { startEngine, waitFor } from "./fixtures/engine/harness.ts";

const NAP = "export async function handler() { await new Promise((r) => setTimeout(r, 300)); }";

Deno.test("without a local queue a busy worker leaves waiting jobs to another worker", async () => {
  const engine = await startEngine({ FLUXBASE_JOBS_MAX_CONCURRENT_PER_WORKER: "1" });
  const { sql } = engine.db;
  try {
    await insertFunction(sql, { name: "nap", code: NAP });
    await submitJobs(sql, "nap", [1, 2, 3, 4]);
    await waitFor("the first job running", async () => {
      const [{ n }] = await sql`select count(*)::int as n from jobs.queue where status = 'running'`;
      return n === 1;
    });
    await engine.addWorker();
    await waitFor("all completed", async () => {
      const [{ n }] = await sql`select count(*)::int as n from jobs.queue
        where status = 'completed'`;
      return n === 4;
    }, 30_000);
    const [{ workers }] = await sql`select count(distinct worker_id)::int as workers
      from jobs.queue`;
    assert.equal(workers, 2);
  } finally {
    await engine.stop();
  }
});

Deno.test("with a local queue every job runs once", async () => {
  const engine = await startEngine({
    FLUXBASE_JOBS_MAX_CONCURRENT_PER_WORKER: "2",
    FLUXBASE_JOBS_LOCAL_QUEUE_SIZE: "6",
  });
  const { sql } = engine.db;
  try {
    await insertFunction(sql, {
      name: "quick",
      code: "export async function handler() { await new Promise((r) => setTimeout(r, 20)); }",
    });
    await submitJobs(sql, "quick", Array.from({ length: 30 }, (_, i) => i));
    await waitFor("all completed", async () => {
      const [{ n }] = await sql`select count(*)::int as n from jobs.queue
        where status = 'completed'`;
      return n === 30;
    }, 30_000);
    const [row] = await sql`select count(*)::int as odd from jobs.queue
      where started_at is null or retry_count > 0`;
    assert.equal(row.odd, 0);
  } finally {
    await engine.stop();
  }
});
