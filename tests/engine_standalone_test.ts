/** `deno task worker` (main.ts worker): a standalone worker process against DATABASE_URL. */
import assert from "node:assert/strict";
import { startTestServer } from "./_helpers/server.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test("a standalone worker registers, runs jobs, and stops cleanly on SIGTERM", async () => {
  const server = await startTestServer({ env: { FLUXBASE_JOBS_WORKER_MODE: "standalone" } });
  const dataDir = await Deno.makeTempDir({ prefix: "fluxbase-standalone-" });
  const worker = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", MAIN, "worker"],
    env: {
      DATABASE_URL: server.databaseUrl,
      FLUXBASE_AUTH_JWT_SECRET: server.jwtSecret,
      FLUXBASE_DATA_DIR: dataDir,
      FLUXBASE_JOBS_DIR: new URL("../jobs", import.meta.url).pathname,
      FLUXBASE_JOBS_POLL_INTERVAL: "200ms",
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const token = await server.token({ sub: "alice" });
    const submitted = await server.request("POST", "/api/v1/jobs/submit", {
      token,
      body: { job_name: "parallel-processing", payload: { items: [2, 3] } },
    });
    assert.equal(submitted.status, 201);
    let job;
    const deadline = Date.now() + 60_000;
    do {
      await new Promise((r) => setTimeout(r, 100));
      job = (await server.request("GET", `/api/v1/jobs/${submitted.body.id}`, { token })).body;
    } while (job.status !== "completed" && job.status !== "failed" && Date.now() < deadline);
    assert.equal(job.status, "completed", job.error_message);
    assert.deepEqual(job.result.results, [4, 9]);
    const [w] = await server.sql`select pid, status, hostname from jobs.workers
      where id = ${job.worker_id}`;
    assert.equal(w.pid, worker.pid);
    assert.equal(w.status, "active");
    assert.equal(w.hostname, Deno.hostname());
  } finally {
    worker.kill("SIGTERM");
    const status = await worker.status;
    await worker.stderr.cancel();
    const [w] = await server.sql`select status from jobs.workers where pid = ${worker.pid}`;
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
    assert.equal(status.code, 0);
    assert.equal(w?.status, "stopped");
  }
});
