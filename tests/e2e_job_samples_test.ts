/**
 * The spec's job samples, end to end: REST submit -> worker process -> permissioned isolate
 * -> result, progress and logs in PostgreSQL. Uses the example functions in jobs/.
 */
import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "./_helpers/server.ts";

type Job = Record<string, unknown> & { id: string; status: string };

async function waitForStatus(
  server: TestServer,
  token: string,
  id: string,
  statuses: string[],
  timeoutMs = 30_000,
): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const res = await server.request("GET", `/api/v1/jobs/${id}`, { token });
    if (statuses.includes(res.body.status)) return res.body;
    if (Date.now() > deadline) {
      throw new Error(`job ${id} is ${res.body.status}, not ${statuses.join("/")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function submit(server: TestServer, token: string, name: string, payload?: unknown) {
  const res = await server.request("POST", "/api/v1/jobs/submit", {
    token,
    body: { job_name: name, payload },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as Job;
}

Deno.test("spec job samples run end to end in worker processes", async (t) => {
  const server = await startTestServer({
    workers: 1,
    jobsDir: new URL("../jobs", import.meta.url).pathname,
    env: { FLUXBASE_JOBS_RETRY_BASE_DELAY: "50ms", FLUXBASE_JOBS_CANCEL_GRACE: "500ms" },
  });
  try {
    const alice = await server.token({ sub: "alice", email: "alice@example.com" });
    const admin = await server.token({ sub: "root", role: "admin", email: "root@example.com" });

    await t.step("basic: progress, result, logs with the user's email", async () => {
      const job = await submit(server, alice, "process-data", { items: [1, 2, 3, 4, 5] });
      const done = await waitForStatus(server, alice, job.id, ["completed", "failed"]);
      assert.equal(done.status, "completed", String(done.error_message));
      assert.deepEqual(done.result, { success: true, processed: 5 });
      assert.deepEqual(
        { percent: (done.progress as Job["progress"] & { percent: number }).percent },
        { percent: 100 },
      );
      assert.match(String(done.logs), /Running for user: alice@example\.com/);
      const logs = await server.request("GET", `/api/v1/jobs/${job.id}/logs`, { token: alice });
      assert.ok(logs.body.count >= 1);
      assert.equal(logs.body.logs[0].level, "info");
    });

    await t.step("admin-only: 403 for a user; an admin's run uses the service client", async () => {
      const denied = await server.request("POST", "/api/v1/jobs/submit", {
        token: alice,
        body: { job_name: "admin-report" },
      });
      assert.equal(denied.status, 403);
      const job = await submit(server, admin, "admin-report");
      const done = await waitForStatus(server, admin, job.id, ["completed", "failed"]);
      assert.equal(done.status, "completed", String(done.error_message));
      const report = (done.result as { report: { stats: { total: number } } }).report;
      assert.ok(report.stats.total >= 2, "the service client saw every user's jobs");
      assert.match(String(done.logs), /Admin: root@example\.com/);
    });

    await t.step("parallel processing", async () => {
      const job = await submit(server, alice, "parallel-processing", { items: [1, 2, 3, 4] });
      const done = await waitForStatus(server, alice, job.id, ["completed", "failed"]);
      assert.equal(done.status, "completed", String(done.error_message));
      assert.deepEqual((done.result as { results: number[] }).results, [1, 4, 9, 16]);
    });

    await t.step("follow-up jobs are submitted as the same user", async () => {
      const job = await submit(server, alice, "process-batch", { total_batches: 3 });
      const deadline = Date.now() + 30_000;
      let rows;
      do {
        await new Promise((r) => setTimeout(r, 100));
        rows = await server.sql`select created_by, status, payload->>'current_batch' as batch
          from jobs.queue where job_name = 'process-batch' order by created_at`;
      } while (
        (rows.length < 3 || rows.some((r) => r.status !== "completed")) && Date.now() < deadline
      );
      assert.deepEqual(
        rows.map((r) => [r.created_by, r.status, r.batch]),
        [["alice", "completed", null], ["alice", "completed", "1"], ["alice", "completed", "2"]],
      );
      assert.equal(rows.length, 3);
      const first = await waitForStatus(server, alice, job.id, ["completed"]);
      assert.equal((first.result as { batch: number }).batch, 0);
    });

    await t.step("cancellation while running: the job stops and never runs again", async () => {
      const job = await submit(server, alice, "long-import", { total: 1000, delay_ms: 100 });
      await waitForStatus(server, alice, job.id, ["running"]);
      const res = await server.request("POST", `/api/v1/jobs/${job.id}/cancel`, { token: alice });
      assert.equal(res.status, 200);
      await new Promise((r) => setTimeout(r, 1500));
      const after = await server.request("GET", `/api/v1/jobs/${job.id}`, { token: alice });
      assert.equal(after.body.status, "cancelled");
      assert.equal(after.body.result, null);
      const [worker] = await server.sql`select current_job_count from jobs.workers
        where status = 'active'`;
      assert.equal(worker.current_job_count, 0);
    });

    await t.step(
      "retry: attempts, then failed with the error; a manual retry is a new job",
      async () => {
        const job = await submit(server, alice, "failing-job");
        const done = await waitForStatus(server, alice, job.id, ["failed"]);
        assert.equal(done.retry_count, 2);
        assert.equal(done.max_retries, 2);
        assert.ok(done.error_message);
        const retried = await server.request("POST", `/api/v1/jobs/${job.id}/retry`, {
          token: alice,
        });
        assert.equal(retried.status, 201);
        assert.notEqual(retried.body.id, job.id);
        assert.equal(retried.body.retry_count, 0);
      },
    );
  } finally {
    await server.stop();
  }
});

Deno.test("a job can read neither another user's jobs nor the server's secrets", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "fluxbase-e2e-" });
  const server = await startTestServer({
    workers: 1,
    jobsDir: new URL("./fixtures/e2e", import.meta.url).pathname,
    env: { FLUXBASE_DATA_DIR: dataDir },
  });
  try {
    // A secret file like the one a server without FLUXBASE_AUTH_JWT_SECRET generates.
    await Deno.writeTextFile(`${dataDir}/jwt_secret`, server.jwtSecret, { mode: 0o600 });
    const alice = await server.token({ sub: "alice" });
    const bob = await server.token({ sub: "bob" });

    await t.step("bob's job cannot see alice's job through its fluxbase client", async () => {
      const mine = await submit(server, alice, "peek", { id: crypto.randomUUID() });
      await waitForStatus(server, alice, mine.id, ["completed"]);
      const peek = await submit(server, bob, "peek", { id: mine.id });
      const done = await waitForStatus(server, bob, peek.id, ["completed", "failed"]);
      assert.deepEqual(done.result, { found: false, status: 404 });
      const own = await submit(server, alice, "peek", { id: mine.id });
      const ownDone = await waitForStatus(server, alice, own.id, ["completed", "failed"]);
      assert.deepEqual(ownDone.result, { found: true, status: 200 });
    });

    await t.step("with allow-env and allow-read, no secret is within reach", async () => {
      const job = await submit(server, alice, "secrets", { dataDir });
      const done = await waitForStatus(server, alice, job.id, ["completed", "failed"]);
      assert.equal(done.status, "completed", String(done.error_message));
      const seen = (done.result as { seen: string }).seen;
      const url = new URL(server.databaseUrl);
      assert.ok(!seen.includes(server.jwtSecret), `the JWT secret leaked: ${seen}`);
      assert.ok(!seen.includes(`:${url.password}@`), "the database URL leaked");
      // A password short enough to occur in any text (a test cluster's "pg") is looked for in
      // its URL form only; the embedded database's is random and 48 characters long.
      if (url.password.length >= 8) {
        assert.ok(!seen.includes(decodeURIComponent(url.password)), "the database password leaked");
      }
      assert.ok(!seen.includes(server.serviceKey), "the service key leaked");
      // It did try: the files exist and were refused, not missing.
      assert.match(seen, /unreadable jwt_secret: (NotCapable|PermissionDenied)/);
      assert.match(seen, /"FLUXBASE_JOB_NAME":"secrets"/);
    });
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
