import assert from "node:assert/strict";
import { Rescuer } from "../src/queue/rescuer.ts";
import { jobCompleteManyIfRunning } from "../src/queue/job_queries.ts";
import { workerRegister } from "../src/queue/worker_queries.ts";
import { insertFunction, submitJobs } from "./fixtures/engine/db.ts";
import { getJob, startEngine, waitFor, waitForStatus } from "./fixtures/engine/harness.ts";

const SLOW = `export async function handler(req, a, b, job) {
  job.reportProgress(1, "started");
  await new Promise((r) => setTimeout(r, job.getJobPayload().ms));
  return "done";
}`;

Deno.test("a dead worker's jobs are rescued and a zombie changes nothing", async () => {
  const engine = await startEngine();
  const { sql } = engine.db;
  try {
    await engine.worker.stop(0);
    await insertFunction(sql, { name: "slow", code: SLOW, maxRetries: 1 });
    const [retried, exhausted] = await submitJobs(sql, "slow", [{ ms: 1 }, { ms: 1 }]);
    // A worker that claimed both and then went silent (its heartbeat is an hour old).
    const zombie = crypto.randomUUID();
    await workerRegister(sql, {
      id: zombie,
      name: "z",
      hostname: "h",
      pid: 1,
      maxConcurrentJobs: 5,
    });
    await sql`update jobs.queue set status = 'running', worker_id = ${zombie}, started_at = now()`;
    await sql`update jobs.queue set retry_count = 1 where id = ${exhausted}`;
    await sql`update jobs.workers set last_heartbeat_at = now() - interval '1 hour' where id = ${zombie}`;

    const rescued = await new Rescuer({ sql, config: engine.config.jobs }).rescue();
    assert.deepEqual(rescued.map((r) => r.id).sort(), [retried, exhausted].sort());
    const [w] = await sql`select status from jobs.workers where id = ${zombie}`;
    assert.equal(w.status, "dead");
    const a = await getJob(sql, retried);
    assert.equal(a.status, "pending");
    assert.equal(a.retry_count, 1);
    assert.match(a.error_message ?? "", /worker lost/);
    const b = await getJob(sql, exhausted);
    assert.equal(b.status, "failed");
    assert.match(b.error_message ?? "", /worker lost/);

    // The zombie wakes up and tries to complete both: nothing changes.
    const changed = await jobCompleteManyIfRunning(sql, zombie, [
      { id: retried, result: "zombie", progress: null, logs: null },
      { id: exhausted, result: "zombie", progress: null, logs: null },
    ]);
    assert.equal(changed, 0);
    // A second rescue pass finds nothing more to do.
    assert.equal((await new Rescuer({ sql, config: engine.config.jobs }).rescue()).length, 0);

    // A live worker runs the retried job to completion.
    await engine.addWorker();
    const done = await waitForStatus(sql, retried, ["completed"]);
    assert.equal(done.result, "done");
    assert.equal((await getJob(sql, exhausted)).status, "failed");
  } finally {
    await engine.stop();
  }
});

Deno.test("a worker declared dead stops its jobs and asks to be recycled", async () => {
  let recycled: string | null = null;
  const engine = await startEngine({}, { onRecycle: (r) => (recycled = r) });
  const { sql } = engine.db;
  try {
    await insertFunction(sql, { name: "slow", code: SLOW });
    const [id] = await submitJobs(sql, "slow", [{ ms: 60_000 }]);
    await waitFor("progress", async () => (await getJob(sql, id)).progress);
    await sql`update jobs.workers set status = 'dead' where id = ${engine.worker.id}`;
    await sql`update jobs.queue set status = 'pending', worker_id = null where id = ${id}`;
    await waitFor("recycle", () => Promise.resolve(recycled !== null), 3000);
    assert.match(recycled!, /declared this worker dead/);
    await waitFor(
      "the slot to free",
      () => Promise.resolve(engine.worker.runningCount === 0),
      3000,
    );
    const job = await getJob(sql, id);
    assert.equal(job.status, "pending");
    assert.equal(job.worker_id, null);
  } finally {
    await engine.stop();
  }
});

Deno.test("graceful shutdown returns unfinished jobs to pending without charging", async () => {
  const engine = await startEngine({ FLUXBASE_JOBS_SHUTDOWN_GRACE: "1s" });
  const { sql } = engine.db;
  try {
    await insertFunction(sql, { name: "slow", code: SLOW });
    const [quick, long] = await submitJobs(sql, "slow", [{ ms: 300 }, { ms: 60_000 }]);
    await waitFor("both running", async () => {
      const rows = await sql`select 1 from jobs.queue where progress->>'message' = 'started'`;
      return rows.length === 2;
    });
    const t0 = Date.now();
    await engine.worker.stop();
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 5000, `stop took ${took} ms`);
    const a = await getJob(sql, quick);
    assert.equal(a.status, "completed");
    const b = await getJob(sql, long);
    assert.equal(b.status, "pending");
    assert.equal(b.retry_count, 0);
    assert.equal(b.worker_id, null);
    const [w] = await sql`select status from jobs.workers where id = ${engine.worker.id}`;
    assert.equal(w.status, "stopped");
    await engine.worker.stop(); // safe twice
  } finally {
    await engine.stop();
  }
});

Deno.test("max_concurrent_per_namespace holds across workers", async () => {
  const engine = await startEngine({
    FLUXBASE_JOBS_MAX_CONCURRENT_PER_WORKER: "5",
    FLUXBASE_JOBS_MAX_CONCURRENT_PER_NAMESPACE: "3",
  });
  const { sql } = engine.db;
  try {
    await engine.addWorker();
    await insertFunction(sql, { name: "slow", code: SLOW });
    const ids = await submitJobs(sql, "slow", Array.from({ length: 8 }, () => ({ ms: 400 })));
    let peak = 0;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [{ running, done }] = await sql`
        select count(*) filter (where status = 'running')::int as running,
               count(*) filter (where status = 'completed')::int as done from jobs.queue`;
      peak = Math.max(peak, running);
      if (done === ids.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(peak, 3);
    const [{ n }] = await sql`select count(*)::int as n from jobs.queue where status = 'completed'`;
    assert.equal(n, 8);
  } finally {
    await engine.stop();
  }
});
