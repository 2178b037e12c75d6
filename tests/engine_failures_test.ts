import assert from "node:assert/strict";
import { insertFunction, submitJobs } from "./fixtures/engine/db.ts";
import type { Sql } from "../src/db/pool.ts";
import { getJob, startEngine, waitFor, waitForStatus } from "./fixtures/engine/harness.ts";

/** The job is running inside its isolate: it reported progress (written within 250 ms). */
function waitForProgress(sql: Sql, id: string) {
  return waitFor(`job ${id} to report progress`, async () => (await getJob(sql, id)).progress);
}

Deno.test("failure modes inside a job", async (t) => {
  const engine = await startEngine();
  const { sql } = engine.db;
  const run = async (
    name: string,
    code: string,
    opts: Parameters<typeof insertFunction>[1] extends infer F ? Partial<F> : never = {},
  ) => {
    await insertFunction(sql, { name, code, maxRetries: 0, ...opts });
    const [id] = await submitJobs(sql, name, [{}]);
    return id;
  };
  try {
    await t.step("a thrown error fails the job after its retries, stack in the logs", async () => {
      const id = await run(
        "throws",
        `export function handler() { throw new Error("boom"); }`,
        { maxRetries: 1 },
      );
      const job = await waitForStatus(sql, id, ["failed"]);
      assert.equal(job.retry_count, 1);
      assert.match(job.error_message ?? "", /boom/);
      assert.match(job.logs ?? "", /\[error\] .*boom/);
    });

    await t.step("a failed attempt is retried and the retry can succeed", async () => {
      const id = await run(
        "flaky",
        `export function handler(req, a, b, job) {
           if (job.getJobContext().retry_count === 0) throw new Error("first attempt fails");
           return { attempt: job.getJobContext().retry_count };
         }`,
        { maxRetries: 3 },
      );
      const job = await waitForStatus(sql, id, ["completed", "failed"]);
      assert.equal(job.status, "completed");
      assert.deepEqual(job.result, { attempt: 1 });
      assert.equal(job.retry_count, 1);
    });

    await t.step("a job that runs past its timeout fails with 'timed out after 1 s'", async () => {
      const id = await run(
        "slow",
        `export async function handler() { await new Promise(() => {}); }`,
        {
          timeoutSeconds: 1,
        },
      );
      const job = await waitForStatus(sql, id, ["failed"]);
      assert.match(job.error_message ?? "", /timed out after 1 s/);
    });

    await t.step("a job silent past its progress timeout fails", async () => {
      const id = await run(
        "silent",
        `export async function handler(req, a, b, job) {
           job.reportProgress(10, "started");
           await new Promise(() => {});
         }`,
        { timeoutSeconds: 30, progressTimeoutSeconds: 2 },
      );
      const job = await waitForStatus(sql, id, ["failed"]);
      assert.match(job.error_message ?? "", /progress/i);
      assert.equal(job.progress?.percent, 10);
    });

    await t.step("Deno.exit() in a job fails that job, not the worker", async () => {
      const id = await run("exits", `export function handler() { Deno.exit(3); }`);
      const job = await waitForStatus(sql, id, ["failed"]);
      assert.match(job.error_message ?? "", /exit/i);
      assert.equal(engine.worker.recycleReason, null);
    });

    await t.step("an unhandled rejection fails the job", async () => {
      const id = await run(
        "rejects",
        `export async function handler() {
           Promise.reject(new Error("nobody catches me"));
           await new Promise((r) => setTimeout(r, 500));
           return "finished";
         }`,
      );
      const job = await waitForStatus(sql, id, ["failed", "completed"]);
      assert.equal(job.status, "failed");
      assert.match(job.error_message ?? "", /nobody catches me/);
    });

    await t.step("a job whose function was deleted fails without retrying", async () => {
      const id = await run("gone", `export function handler() { return 1; }`, { maxRetries: 5 });
      await engine.worker.stop(0);
      await sql`update jobs.queue set status = 'pending', worker_id = null where id = ${id}`;
      // As an admin deletes it: under that user's role and claims, so RLS applies.
      const [{ deleted }] = await sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true),
                   set_config('request.jwt.claims', '{"sub":"a","role":"admin"}', true)`;
        return await tx`with d as (delete from jobs.functions where name = 'gone' returning 1)
                        select count(*)::int as deleted from d`;
      });
      assert.equal(deleted, 1);
      const [{ function_id }] = await sql`select function_id from jobs.queue where id = ${id}`;
      assert.equal(function_id, null);
      await engine.addWorker();
      const job = await waitForStatus(sql, id, ["failed"]);
      assert.equal(job.retry_count, 0);
      assert.match(job.error_message ?? "", /no longer exists/);
    });
  } finally {
    await engine.stop();
  }
});

Deno.test("cancellation", async (t) => {
  const engine = await startEngine();
  const { sql } = engine.db;
  try {
    await t.step(
      "a running job sees checkCancellation() turn true and stays cancelled",
      async () => {
        await insertFunction(sql, {
          name: "cooperative",
          code: `export async function handler(req, a, b, job) {
          for (let i = 0; i < 200; i++) {
            if (job.checkCancellation()) return { cancelled: true, at: i };
            job.reportProgress(i / 2, "working");
            await new Promise((r) => setTimeout(r, 50));
          }
          return { cancelled: false };
        }`,
        });
        const [id] = await submitJobs(sql, "cooperative", [{}]);
        await waitForStatus(sql, id, ["running"]);
        await new Promise((r) => setTimeout(r, 200));
        const cancelledAt = Date.now();
        await sql`update jobs.queue set status = 'cancelled', completed_at = now() where id = ${id}`;
        await waitFor("the slot to free", () => Promise.resolve(engine.worker.runningCount === 0));
        // Under `deno test` job modules are type-checked as they load, which slows isolates;
        // the bound is loose here, the isolate tests measure cancellation latency itself.
        assert.ok(Date.now() - cancelledAt < 5000, "the job stopped");
        const job = await getJob(sql, id);
        assert.equal(job.status, "cancelled");
        assert.equal(job.result, null);
      },
    );

    await t.step("a job that ignores cancellation is terminated after the grace", async () => {
      await insertFunction(sql, {
        name: "stubborn",
        code: `export async function handler(req, a, b, job) {
          job.reportProgress(1, "started");
          await new Promise(() => {});
        }`,
      });
      const [id] = await submitJobs(sql, "stubborn", [{}]);
      await waitForProgress(sql, id);
      await sql`update jobs.queue set status = 'cancelled' where id = ${id}`;
      await waitFor(
        "the slot to free",
        () => Promise.resolve(engine.worker.runningCount === 0),
        6000,
      );
      await new Promise((r) => setTimeout(r, 500));
      const job = await getJob(sql, id);
      assert.equal(job.status, "cancelled");
      assert.equal(job.retry_count, 0);
    });

    await t.step("admin terminate stops a running job at once", async () => {
      const [id] = await submitJobs(sql, "stubborn", [{}]);
      await waitForProgress(sql, id);
      const t0 = Date.now();
      await sql.begin(async (tx) => {
        await tx`update jobs.queue set status = 'cancelled' where id = ${id}`;
        await tx`select pg_notify('fluxbase_terminate', ${id})`;
      });
      await waitFor(
        "the slot to free",
        () => Promise.resolve(engine.worker.runningCount === 0),
        3000,
      );
      assert.ok(Date.now() - t0 < 3000, `terminated in ${Date.now() - t0} ms`);
      assert.equal((await getJob(sql, id)).status, "cancelled");
    });

    await t.step("a pending job that was cancelled is never claimed", async () => {
      await engine.worker.stop(0);
      const [id] = await submitJobs(sql, "stubborn", [{}]);
      await sql`update jobs.queue set status = 'cancelled' where id = ${id}`;
      await engine.addWorker();
      await new Promise((r) => setTimeout(r, 600));
      const job = await getJob(sql, id);
      assert.equal(job.status, "cancelled");
      assert.equal(job.started_at, null);
    });
  } finally {
    await engine.stop();
  }
});
