/**
 * The local queue (jobs.local_queue_size): claimed jobs that have not started are marked by a
 * NULL started_at, get one when they start, and are never charged an attempt when their
 * worker dies before starting them.
 */
import assert from "node:assert/strict";
import { jobClaimAvailable, jobMarkStartedMany } from "../src/queue/job_queries.ts";
import { workerRescueById } from "../src/queue/worker_queries.ts";
import { startEngine, testConfig, waitFor } from "./fixtures/engine/harness.ts";
import { insertFunction, submitJobs } from "./fixtures/engine/db.ts";
import { createTestDatabase } from "./_helpers/db.ts";

Deno.test("a dead worker's never-started local jobs go back to pending uncharged", async () => {
  const db = await createTestDatabase();
  try {
    const { sql } = db;
    const policy = testConfig().jobs;
    await insertFunction(sql, {
      name: "once",
      code: "export function handler() {}",
      maxRetries: 0,
    });
    await submitJobs(sql, "once", [1, 2, 3, 4, 5]);
    const [w] = await sql`insert into jobs.workers (name, hostname, max_concurrent_jobs)
      values ('w', 'h', 2) returning id`;

    const claimed = await jobClaimAvailable(sql, w.id, 5, 100, 2);
    assert.equal(claimed.length, 5);
    const started = claimed.filter((j) => j.started_at !== null).map((j) => j.id);
    const queued = claimed.filter((j) => j.started_at === null).map((j) => j.id);
    assert.equal(started.length, 2);
    assert.equal(queued.length, 3);

    // One queued job starts before the worker dies.
    await jobMarkStartedMany(sql, w.id, [queued[0]]);
    const rescued = await workerRescueById(sql, w.id, "worker process crashed", policy);
    assert.equal(rescued.length, 5);

    const rows = await sql<{ id: string; status: string; retry_count: number }[]>`
      select id, status, retry_count from jobs.queue`;
    const byId = new Map(rows.map((r) => [r.id, r]));
    // Started (max_retries 0): failed, as a crash mid-run must be.
    for (const id of [...started, queued[0]]) assert.equal(byId.get(id)!.status, "failed");
    // Never started: pending again, no attempt charged, claimable at once.
    for (const id of queued.slice(1)) {
      assert.deepEqual(
        { status: byId.get(id)!.status, retry_count: byId.get(id)!.retry_count },
        { status: "pending", retry_count: 0 },
      );
    }
    const [again] = await sql`select count(*)::int as n from jobs.queue
      where status = 'pending' and run_after <= now()`;
    assert.equal(again.n, 2);
  } finally {
    await db.drop();
  }
});

Deno.test("with a local queue every job runs once and records when it started", async () => {
  const engine = await startEngine({
    FLUXBASE_JOBS_MAX_CONCURRENT_PER_WORKER: "2",
    FLUXBASE_JOBS_LOCAL_QUEUE_SIZE: "6",
  });
  const { sql } = engine.db;
  try {
    await insertFunction(sql, {
      name: "nap",
      code: "export async function handler() { await new Promise((r) => setTimeout(r, 20)); }",
    });
    await submitJobs(sql, "nap", Array.from({ length: 30 }, (_, i) => i));
    await waitFor("all completed", async () => {
      const [{ n }] = await sql`select count(*)::int as n from jobs.queue
        where status = 'completed'`;
      return n === 30;
    }, 30_000);
    const [row] = await sql`select count(*)::int as missing from jobs.queue
      where started_at is null or started_at > completed_at or retry_count > 0`;
    assert.equal(row.missing, 0);
  } finally {
    await engine.stop();
  }
});
