/**
 * The spec's three "Real-Time Progress Tracking" subscriptions against a full server with
 * one worker running the spec's process-data job: basic (table:jobs.queue), RLS (another
 * user sees nothing, an admin sees all), and the status=eq.running filter.
 */
import assert from "node:assert/strict";
import { startTestServer } from "./_helpers/server.ts";
import { type Msg, WsClient } from "./fixtures/realtime/harness.ts";

Deno.test(
  "realtime e2e: the spec's subscriptions follow a running job",
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    const s = await startTestServer({ workers: 1 });
    const clients: WsClient[] = [];
    const open = async (token: string) => {
      const c = await WsClient.open(`${s.url.replace("http", "ws")}/realtime?token=${token}`);
      clients.push(c);
      return c;
    };
    try {
      const alice = await s.token({ sub: "e2e-alice", email: "alice@example.com" });
      const basic = await open(alice);
      await basic.subscribe("table:jobs.queue");
      const running = await open(alice);
      await running.subscribe("jobs:running", {
        event: "UPDATE",
        schema: "jobs",
        table: "queue",
        filter: "status=eq.running",
      });
      const bob = await open(await s.token({ sub: "e2e-bob" }));
      await bob.subscribe("table:jobs.queue");
      const admin = await open(await s.token({ sub: "e2e-admin", role: "admin" }));
      await admin.subscribe("table:jobs.queue");

      const submitted = await s.request("POST", "/api/v1/jobs/submit", {
        token: alice,
        body: { job_name: "process-data", payload: { items: [1, 2, 3] } },
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      const jobId = submitted.body.id;

      const mine = (m: Msg) => m.type === "postgres_changes" && m.payload.record?.id === jobId;
      const completed = await basic.next(
        (m) => mine(m) && m.payload.type === "UPDATE" && m.payload.record.status === "completed",
        30_000,
      );
      assert.equal(completed.payload.record.created_by, "e2e-alice");
      assert.equal(completed.payload.record.user_email, "alice@example.com");
      assert.ok(completed.payload.record.result !== undefined);
      const progress = basic.drain().filter(mine).map((m) => m.payload.record.progress?.percent)
        .filter((p) => typeof p === "number");
      assert.ok(progress.includes(100) || completed.payload.record.progress?.percent === 100);

      // The filtered subscription saw only running states of the job.
      const runningEvents = running.drain().filter(mine);
      assert.ok(runningEvents.length >= 1);
      assert.ok(runningEvents.every((m) => m.payload.record.status === "running"));

      // The admin saw the completion; bob saw nothing of alice's job.
      await admin.next((m) => mine(m) && m.payload.record.status === "completed", 5000);
      assert.deepEqual(bob.drain().filter(mine), []);
    } finally {
      for (const c of clients) c.close();
      await s.stop();
    }
  },
);
