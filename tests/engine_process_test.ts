/**
 * Worker processes under the supervisor: out of memory, an isolate that never stops, and a
 * crash of a worker and of the whole server while jobs run.
 */
import assert from "node:assert/strict";
import type { Sql } from "../src/db/pool.ts";
import { WORKER_CRASHED, WorkerSupervisor } from "../src/worker/supervisor.ts";
import { insertFunction, submitJobs } from "./fixtures/engine/db.ts";
import { getJob, testConfig, waitFor, waitForStatus } from "./fixtures/engine/harness.ts";
import { createTestDatabase, type TestDatabase } from "./_helpers/db.ts";

function supervisor(db: TestDatabase, env: Record<string, string> = {}, rescueOnExit = true) {
  const config = testConfig({ DATABASE_URL: db.url, ...env });
  return new WorkerSupervisor({
    config,
    databaseUrl: db.url,
    jwtSecret: config.jwtSecret!,
    stdio: "null",
    rescueOnExit,
  });
}

function activeWorkers(sql: Sql) {
  return sql<{ id: string; pid: number }[]>`
    select id, pid from jobs.workers where status = 'active'`;
}

Deno.test("a job that runs out of memory fails its attempt; the worker is replaced", async () => {
  const db = await createTestDatabase();
  const sup = supervisor(db, {
    FLUXBASE_JOBS_EMBEDDED_WORKER_COUNT: "1",
    FLUXBASE_JOBS_WORKER_MEMORY: "128",
  });
  try {
    await insertFunction(db.sql, {
      name: "hog",
      maxRetries: 0,
      code: `export function handler() {
        const keep = [];
        for (;;) keep.push(new Array(1_000_000).fill(Math.random()));
      }`,
    });
    await insertFunction(db.sql, { name: "ok", code: "export function handler() { return 1; }" });
    await sup.start();
    const first = await waitFor("a worker", async () => (await activeWorkers(db.sql))[0]);
    const [id] = await submitJobs(db.sql, "hog", [{}]);
    const job = await waitForStatus(db.sql, id, ["failed"], 60_000);
    assert.equal(job.error_message, WORKER_CRASHED);
    const [replacement] = await waitFor("a replacement worker", async () => {
      const rows = await activeWorkers(db.sql);
      return rows.length === 1 && rows[0].id !== first.id ? rows : undefined;
    }, 30_000);
    assert.notEqual(replacement.pid, first.pid);
    const [dead] = await db.sql`select status from jobs.workers where id = ${first.id}`;
    assert.equal(dead.status, "dead");
    const [next] = await submitJobs(db.sql, "ok", [{}]);
    assert.equal((await waitForStatus(db.sql, next, ["completed"], 30_000)).result, 1);
  } finally {
    await sup.stop();
    await db.drop();
  }
});

Deno.test("an isolate stuck in a loop times out and its worker process is recycled", async () => {
  const db = await createTestDatabase();
  const sup = supervisor(db, { FLUXBASE_JOBS_EMBEDDED_WORKER_COUNT: "1" });
  try {
    await insertFunction(db.sql, {
      name: "spin",
      maxRetries: 0,
      timeoutSeconds: 1,
      code: "export function handler() { for (;;) {} }",
    });
    await insertFunction(db.sql, { name: "ok", code: "export function handler() { return 2; }" });
    await sup.start();
    const first = await waitFor("a worker", async () => (await activeWorkers(db.sql))[0]);
    const [id] = await submitJobs(db.sql, "spin", [{}]);
    const job = await waitForStatus(db.sql, id, ["failed"], 30_000);
    assert.match(job.error_message ?? "", /timed out after 1 s/);
    assert.match(job.error_message ?? "", /did not stop/);
    await waitFor("the recycled worker to be replaced", async () => {
      const rows = await activeWorkers(db.sql);
      return rows.length === 1 && rows[0].id !== first.id;
    }, 30_000);
    const [stopped] = await db.sql`select status from jobs.workers where id = ${first.id}`;
    assert.equal(stopped.status, "stopped");
    const [next] = await submitJobs(db.sql, "ok", [{}]);
    assert.equal((await waitForStatus(db.sql, next, ["completed"], 30_000)).result, 2);
  } finally {
    await sup.stop();
    await db.drop();
  }
});

Deno.test("SIGKILL of a worker and of the whole server: every job completes exactly once", async () => {
  const db = await createTestDatabase();
  const env = {
    FLUXBASE_JOBS_EMBEDDED_WORKER_COUNT: "2",
    FLUXBASE_JOBS_MAX_CONCURRENT_PER_WORKER: "4",
  };
  // The first "server" does not rescue its dead children: it dies with them, so their jobs
  // must come back through the heartbeat timeout, as after a real crash.
  let sup = supervisor(db, env, false);
  try {
    await insertFunction(db.sql, {
      name: "work",
      maxRetries: 10,
      code: `export async function handler(req, a, b, job) {
        await new Promise((r) => setTimeout(r, 150));
        return job.getJobPayload().n;
      }`,
    });
    const N = 60;
    const ids = await submitJobs(db.sql, "work", Array.from({ length: N }, (_, n) => ({ n })));
    await sup.start();
    const count = async (status: string) =>
      (await db.sql`select count(*)::int as n from jobs.queue where status = ${status}`)[0].n;
    await waitFor("some jobs done", async () => (await count("completed")) >= 8, 60_000);

    // One worker process dies mid-job.
    const [victim] = sup.workers;
    sup.kill(victim.pid, "SIGKILL");
    await waitFor("more jobs done", async () => (await count("completed")) >= 25, 60_000);

    // The whole server dies: every worker killed, the supervisor gone without cleanup.
    for (const w of sup.workers) sup.kill(w.pid, "SIGKILL");
    await sup.stop(); // only reaps the dead children; nothing is stopped gracefully
    assert.ok((await count("running")) > 0, "jobs were left running by the dead workers");

    // Restart: the rescuer of the new workers finds the jobs of the dead ones.
    sup = supervisor(db, env);
    await sup.start();
    await waitFor("every job completed", async () => (await count("completed")) === N, 90_000);
    const rows = await db.sql<{ status: string; result: number; n: number }[]>`
      select status, result::int as result, (payload->>'n')::int as n from jobs.queue`;
    assert.equal(rows.length, N);
    assert.equal(rows.filter((r) => r.status === "completed").length, N);
    assert.deepEqual(rows.map((r) => r.result).sort((a, b) => a - b), [...Array(N).keys()]);
    assert.equal(await count("running"), 0);
    assert.equal((await getJob(db.sql, ids[0])).status, "completed");
  } finally {
    await sup.stop();
    await db.drop();
  }
});

Deno.test("a worker whose supervisor was SIGKILLed shuts itself down", async () => {
  const db = await createTestDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "fluxbase-orphan-" });
  const supervisor = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--no-prompt",
      new URL("./fixtures/engine/supervise.ts", import.meta.url).pathname,
    ],
    env: { DATABASE_URL: db.url, FLUXBASE_DATA_DIR: dataDir },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = supervisor.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) out += (await reader.read()).value ?? "";
    const workerPid = Number(out.trim());
    assert.ok(workerPid > 0);
    await waitFor("the worker to register", async () => {
      const rows = await db.sql`select 1 from jobs.workers where pid = ${workerPid}
        and status = 'active'`;
      return rows.length === 1;
    }, 30_000);

    supervisor.kill("SIGKILL");
    await supervisor.status;
    await reader.cancel();
    await waitFor("the orphaned worker to exit", async () => {
      try {
        await Deno.stat(`/proc/${workerPid}`);
        return false;
      } catch {
        return true;
      }
    }, 15_000);
    const [row] = await db.sql`select status from jobs.workers where pid = ${workerPid}`;
    assert.equal(row.status, "stopped");
  } finally {
    try {
      supervisor.kill("SIGKILL");
    } catch { /* already gone */ }
    await db.drop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
