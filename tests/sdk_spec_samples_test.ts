/**
 * Every SDK sample of the spec, run as written against a real server with a worker, with
 * `console.log` captured so the documented output can be asserted.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { startTestServer, type TestServer } from "./_helpers/server.ts";
import { createClient, type FluxbaseClient } from "../src/sdk/mod.ts";

function captureConsole() {
  const lines: string[] = [];
  const orig = { log: console.log, error: console.error };
  const fmt = (args: unknown[]) =>
    args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
  console.log = (...a: unknown[]) => void lines.push(fmt(a));
  console.error = (...a: unknown[]) => void lines.push(`[err] ${fmt(a)}`);
  return { lines, restore: () => Object.assign(console, orig) };
}

async function until(pred: () => boolean, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function setup(): Promise<
  { srv: TestServer; client: FluxbaseClient; admin: FluxbaseClient }
> {
  const srv = await startTestServer({ workers: 1 });
  const client = createClient(srv.url, { apiKey: srv.anonKey });
  client.auth.setSession(await srv.token({ sub: "user-a", email: "a@example.com" }));
  const admin = createClient(srv.url, { serviceKey: srv.serviceKey });
  return { srv, client, admin };
}

Deno.test({
  name: "spec samples: submit, poll, realtime, list, cancel, retry",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const { srv, client, admin } = await setup();
    try {
      let jobId = "";
      await t.step("Submit a Job prints the id and status pending", async () => {
        const cap = captureConsole();
        try {
          // --- spec: Quick Start / Submit a Job ---
          const { data: job, error } = await client.jobs.submit("process-data", {
            items: [1, 2, 3, 4, 5],
          });

          if (error) {
            console.error("Failed to submit job:", error);
          } else {
            console.log("Job submitted:", job.id);
            console.log("Status:", job.status); // "pending"
          }
          // ---
          jobId = job!.id;
        } finally {
          cap.restore();
        }
        assert.deepEqual(cap.lines, [`Job submitted: ${jobId}`, "Status: pending"]);
      });

      await t.step("Track Progress (Polling) ends with the result", async () => {
        const cap = captureConsole();
        try {
          // --- spec: Track Progress (Polling), with a shorter sleep ---
          // deno-lint-ignore no-inner-declarations -- the sample declares it this way
          async function waitForJob(jobId: string) {
            let completed = false;
            while (!completed) {
              const { data: job } = await client.jobs.get(jobId);
              console.log(`Status: ${job!.status}`);
              if (job!.progress) {
                console.log(`Progress: ${job!.progress.percent}% - ${job!.progress.message}`);
              }
              if (job!.status === "completed") {
                console.log("Result:", job!.result);
                completed = true;
              } else if (job!.status === "failed") {
                console.error("Error:", job!.error_message);
                completed = true;
              } else if (job!.status === "cancelled") {
                console.log("Job was cancelled");
                completed = true;
              }
              if (!completed) await new Promise((resolve) => setTimeout(resolve, 200));
            }
          }
          await Promise.race([
            waitForJob(jobId),
            new Promise((_, rej) =>
              setTimeout(() => rej(new Error("job did not finish in 30 s")), 30_000)
            ),
          ]);
          // ---
        } finally {
          cap.restore();
        }
        assert.equal(cap.lines.at(-1), 'Result: {"success":true,"processed":5}');
        assert.ok(cap.lines.includes("Progress: 100% - Processed 5/5"), cap.lines.join("\n"));
      });

      await t.step("Basic Realtime Subscription logs progress and the result", async () => {
        const cap = captureConsole();
        let done = false;
        try {
          // --- spec: Basic Realtime Subscription, as written: submit, then subscribe ---
          // Submit job
          const { data: job } = await client.jobs.submit("process-data", {
            items: [1, 2, 3],
          });

          // Subscribe to realtime updates
          const channel = client.realtime.channel("table:jobs.queue");

          channel
            .on("UPDATE", (payload) => {
              const updatedJob = payload.new;

              // Filter for our specific job
              if (updatedJob.id === job!.id) {
                console.log(
                  `[${updatedJob.progress.percent}%] ${updatedJob.progress.message}`,
                );

                // Handle completion
                if (updatedJob.status === "completed") {
                  console.log("Result:", updatedJob.result);
                  channel.unsubscribe();
                  done = true;
                }

                // Handle failure
                if (updatedJob.status === "failed") {
                  console.error("Error:", updatedJob.error_message);
                  console.error("Logs:", updatedJob.logs);
                  channel.unsubscribe();
                  done = true;
                }
              }
            })
            .subscribe();
          // ---
          await until(() => done, 30_000, "the completed event");
        } finally {
          cap.restore();
        }
        assert.equal(cap.lines.at(-1), 'Result: {"success":true,"processed":3}');
        assert.ok(cap.lines.some((l) => /^\[100%\] Processed 3\/3$/.test(l)), cap.lines.join("\n"));
      });

      await t.step("Filter Subscriptions delivers only running jobs' progress", async () => {
        const seen: Array<{ status: string; percent: unknown }> = [];
        const statuses: string[] = [];
        // --- spec: Advanced: Filter Subscriptions ---
        const channel = client.realtime.channel("jobs:running");
        channel.on("postgres_changes", {
          event: "UPDATE",
          schema: "jobs",
          table: "queue",
          filter: "status=eq.running",
        }, (payload) => {
          seen.push({ status: payload.new.status, percent: payload.new.progress?.percent });
        }).subscribe((s) => statuses.push(s));
        // ---
        await until(() => statuses.includes("SUBSCRIBED"), 5000, "SUBSCRIBED");
        const { data: job } = await client.jobs.submit("process-data", { items: [1, 2, 3, 4] });
        await client.jobs.waitFor(job!.id, { timeoutMs: 30_000 });
        await new Promise((r) => setTimeout(r, 300));
        await channel.unsubscribe();
        assert.ok(seen.length > 0, "received running updates");
        assert.ok(seen.every((e) => e.status === "running"), JSON.stringify(seen));
      });

      await t.step(
        "RLS: user B's channel sees none of user A's events; admin sees them",
        async () => {
          const userB = createClient(srv.url, { apiKey: srv.anonKey });
          userB.auth.setSession(await srv.token({ sub: "user-b" }));
          const bEvents: string[] = [];
          const adminEvents: string[] = [];
          const st: string[] = [];
          const chB = userB.realtime.channel("table:jobs.queue").on(
            "UPDATE",
            (p) => bEvents.push(p.new.id),
          )
            .subscribe((s) => st.push(`b:${s}`));
          const chAdmin = admin.realtime.channel("table:jobs.queue")
            .on("UPDATE", (p) => adminEvents.push(p.new.id))
            .subscribe((s) => st.push(`admin:${s}`));
          await until(() => st.length === 2, 5000, "both SUBSCRIBED");
          const { data: job } = await client.jobs.submit("process-data", { items: [1] });
          await client.jobs.waitFor(job!.id, { timeoutMs: 30_000 });
          await until(() => adminEvents.includes(job!.id), 5000, "the admin's event");
          await new Promise((r) => setTimeout(r, 300));
          assert.deepEqual(bEvents, []);
          await chB.unsubscribe();
          await chAdmin.unsubscribe();
          userB.realtime.disconnect();
        },
      );

      await t.step("List Jobs prints name, status and percent", async () => {
        const cap = captureConsole();
        try {
          // --- spec: List Jobs (all statuses: the sample's "running" ones are finished by now) ---
          const { data: jobs } = await client.jobs.list({ limit: 20, offset: 0 });
          jobs?.forEach((job) => {
            console.log(`${job.job_name}: ${job.status} (${job.progress?.percent}%)`);
          });
          // ---
        } finally {
          cap.restore();
        }
        assert.ok(cap.lines.length >= 4, cap.lines.join("\n"));
        assert.ok(
          cap.lines.every((l) => l === "process-data: completed (100%)"),
          cap.lines.join("\n"),
        );
        const running = await client.jobs.list({ status: "running", limit: 20, offset: 0 });
        assert.deepEqual(running.data, []);
      });

      await t.step("Cancel a Job, then Retry it", async () => {
        const { data: later } = await client.jobs.submit("process-data", { items: [1] }, {
          scheduledAt: new Date(Date.now() + 3_600_000),
        });
        const jobId = later!.id;
        const cap = captureConsole();
        try {
          // --- spec: Cancel a Job ---
          const { error } = await client.jobs.cancel(jobId);
          if (!error) {
            console.log("Job cancelled");
          }
          // --- spec: Retry a Failed Job ---
          const { data: newJob } = await client.jobs.retry(jobId);
          console.log("Retry job ID:", newJob!.id);
          // ---
        } finally {
          cap.restore();
        }
        assert.equal(cap.lines[0], "Job cancelled");
        assert.match(cap.lines[1], /^Retry job ID: [0-9a-f-]{36}$/);
        assert.notEqual(cap.lines[1], `Retry job ID: ${jobId}`);
        const again = await client.jobs.cancel(jobId);
        assert.equal(again.error?.status, 409);
      });

      await t.step("another user's job is not found through every user call", async () => {
        const userB = createClient(srv.url, { apiKey: srv.anonKey });
        userB.auth.setSession(await srv.token({ sub: "user-b" }));
        for (
          const r of [
            await userB.jobs.get(jobId),
            await userB.jobs.cancel(jobId),
            await userB.jobs.retry(jobId),
          ]
        ) {
          assert.equal(r.data, null);
          assert.equal(r.error?.status, 404);
        }
      });
    } finally {
      client.realtime.disconnect();
      admin.realtime.disconnect();
      await srv.stop();
    }
  },
});

Deno.test({
  name: "spec samples: admin operations and the three deployment methods",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const { srv, client: userClient, admin: client } = await setup();
    try {
      await t.step("Monitoring Workers lists the active worker", async () => {
        // The worker process registers itself shortly after the server starts.
        for (let i = 0; i < 100; i++) {
          if ((await client.admin.jobs.listWorkers()).data?.length) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const cap = captureConsole();
        try {
          // --- spec: Monitoring Workers ---
          const { data: workers } = await client.admin.jobs.listWorkers();
          workers?.forEach((worker) => {
            console.log(`${worker.name}`);
            console.log(`  Status: ${worker.status}`);
            console.log(`  Current jobs: ${worker.current_job_count}`);
            console.log(`  Max concurrent: ${worker.max_concurrent_jobs}`);
            console.log(`  Last heartbeat: ${worker.last_heartbeat_at}`);
          });
          // ---
        } finally {
          cap.restore();
        }
        assert.equal(cap.lines.length, 5, cap.lines.join("\n"));
        assert.equal(cap.lines[1], "  Status: active");
        assert.match(cap.lines[2], /^ {2}Current jobs: \d+$/);
        assert.match(cap.lines[3], /^ {2}Max concurrent: \d+$/);
      });

      await t.step("Admin Operations: listJobs, getStats, listWorkers, terminate", async () => {
        const { data: a } = await userClient.jobs.submit("process-data", { items: [1, 2] });
        await userClient.jobs.waitFor(a!.id, { timeoutMs: 30_000 });
        const { data: running } = await userClient.jobs.submit("long-import", {
          total: 1000,
          batch_size: 10,
          delay_ms: 100,
        });
        const jobId = running!.id;
        for (let i = 0; i < 100; i++) {
          if ((await userClient.jobs.get(jobId)).data?.status === "running") break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const cap = captureConsole();
        try {
          // --- spec: Admin Operations ---
          const { data: allJobs } = await client.admin.jobs.listJobs({
            status: "completed",
            namespace: "default",
          });
          console.log("All:", allJobs!.length);

          const { data: stats } = await client.admin.jobs.getStats("default");
          console.log("Pending:", stats!.pending);
          console.log("Running:", stats!.running);
          console.log("Completed:", stats!.completed);
          console.log("Failed:", stats!.failed);

          const { data: workers } = await client.admin.jobs.listWorkers();
          workers?.forEach((worker) => {
            console.log(`Worker ${worker.id}: ${worker.current_jobs} jobs`);
          });

          await client.admin.jobs.terminate(jobId);
          // ---
        } finally {
          cap.restore();
        }
        assert.equal(cap.lines[0], "All: 1");
        assert.equal(cap.lines[3], "Completed: 1");
        assert.equal(cap.lines[4], "Failed: 0");
        assert.match(cap.lines[5], /^Worker [0-9a-f-]{36}: \d+ jobs$/);
        const final = await userClient.jobs.waitFor(jobId, { timeoutMs: 15_000 });
        assert.equal(final.data?.status, "cancelled");
      });

      await t.step("a user token is refused by admin routes with 403", async () => {
        const r = await userClient.admin.jobs.getStats();
        assert.equal(r.error?.status, 403);
        assert.equal(r.data, null);
      });

      await t.step("Method 1: SDK Upload, then run the uploaded function", async () => {
        const code0 = await readFile(
          new URL("./fixtures/sdk/jobs/greet.ts", import.meta.url),
          "utf-8",
        );
        // --- spec: Method 1: SDK Upload ---
        const code = code0;
        const { data, error } = await client.admin.jobs.create({
          name: "greet",
          namespace: "default",
          code,
          enabled: true,
        });
        // ---
        assert.equal(error, null);
        assert.equal(data?.name, "greet");
        assert.equal(data?.enabled, true);
        const { data: job } = await userClient.jobs.submit("greet", { name: "Ada" });
        const done = await userClient.jobs.waitFor(job!.id, { timeoutMs: 30_000 });
        assert.deepEqual(done.data?.result, { greeting: "Hello, Ada" });
        const { data: fns } = await client.admin.jobs.list("default");
        assert.equal(fns!.filter((f) => f.name === "greet").length, 1);
      });

      await t.step("Method 2: Filesystem Auto-Load loaded jobs/ at boot", async () => {
        const { data: fns } = await client.admin.jobs.list("default");
        const names = fns!.map((f) => f.name);
        for (const n of ["process-data", "failing-job", "word-stats"]) {
          assert.ok(names.includes(n), names.join());
        }
      });

      await t.step("Method 3: Sync API prints the summary", async () => {
        const cap = captureConsole();
        try {
          // --- spec: Method 3: Sync API ---
          const { data, error } = await client.admin.jobs.sync({
            namespace: "default",
            path: "./jobs",
          });

          console.log(`Created: ${data!.summary.created}`);
          console.log(`Updated: ${data!.summary.updated}`);
          console.log(`Deleted: ${data!.summary.deleted}`);
          // ---
          assert.equal(error, null);
        } finally {
          cap.restore();
        }
        assert.deepEqual(cap.lines, ["Created: 0", "Updated: 0", "Deleted: 0"]);
        const r = await client.admin.jobs.sync({
          namespace: "synced",
          jobs: [{ name: "one", code: "export function handler() { return 1; }" }],
        });
        assert.deepEqual(r.data?.summary, {
          created: 1,
          updated: 0,
          deleted: 0,
          unchanged: 0,
          errors: 0,
        });
      });
    } finally {
      client.realtime.disconnect();
      userClient.realtime.disconnect();
      await srv.stop();
    }
  },
});
