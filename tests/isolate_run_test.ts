import assert from "node:assert/strict";
import { loadFunctionsDir } from "../src/functions/loader.ts";
import { IsolatePool } from "../src/isolate/pool.ts";
import type { FunctionBundle } from "../src/isolate/types.ts";
import { handlerCode, LIMITS, makeBundle, makeJob, recorder } from "./fixtures/isolate/harness.ts";

const pool = new IsolatePool();

async function run(bundle: FunctionBundle, payload: unknown = {}) {
  const hooks = recorder();
  const outcome = await pool.run(bundle, makeJob({ payload }), hooks, LIMITS).done;
  return { outcome, hooks };
}

Deno.test("a handler's return value, progress and logs reach the host", async () => {
  const bundle = makeBundle(handlerCode(`
    const ctx = job.getJobContext();
    console.log("Running for user:", ctx.user?.email, { n: 1 });
    console.error("bad thing");
    console.debug("x".repeat(10000));
    job.reportProgress(50, "half", { processed: 1 });
    job.reportProgress(100);
    return { body: await req.json(), method: req.method, ctx, payload: job.getJobPayload(),
      isRequest: req instanceof Request, type: req.headers.get("content-type"), url: req.url,
      clients: [typeof fluxbase.jobs.submit, typeof fluxbaseService.admin.jobs.list] };
  `));
  const { outcome, hooks } = await run(bundle, { items: [1, 2] });
  assert.equal(outcome.kind, "completed");
  assert.equal(outcome.isolateStuck, false);
  const result = (outcome as { result: Record<string, unknown> }).result;
  assert.deepEqual(result.body, { items: [1, 2] });
  assert.equal(result.method, "POST");
  // req and the clients are built on first use (entry.ts lazy()) and behave as the real ones.
  assert.equal(result.isRequest, true);
  assert.equal(result.type, "application/json");
  assert.equal(result.url, "http://fluxbase.test/api/v1/jobs/run/test-job");
  assert.deepEqual(result.clients, ["function", "function"]);
  assert.deepEqual(result.payload, { items: [1, 2] });
  const ctx = result.ctx as Record<string, unknown>;
  assert.deepEqual(Object.keys(ctx).sort(), [
    "job_id",
    "job_name",
    "namespace",
    "payload",
    "retry_count",
    "user",
  ]);
  assert.deepEqual(ctx.user, { id: "user-1", email: "user1@example.com", role: "authenticated" });
  assert.deepEqual(hooks.progress, [
    { percent: 50, message: "half", data: { processed: 1 } },
    { percent: 100, message: "", data: null },
  ]);
  assert.deepEqual(hooks.logs.map((l) => [l.level, l.message.slice(0, 50)]), [
    ["info", "Running for user: user1@example.com { n: 1 }"],
    ["error", "bad thing"],
    ["debug", "x".repeat(50)],
  ]);
  assert.match(hooks.logs[2].message, /^x{8192}\.\.\. \[1808 more characters\]$/);
  assert.ok(hooks.logs[0].at instanceof Date);
});

Deno.test("reportProgress rejects a percent outside 0-100", async () => {
  const bundle = makeBundle(handlerCode(`
    const errors = [];
    for (const p of [-1, 101, NaN, "50"]) {
      try { job.reportProgress(p); } catch (e) { errors.push(e.name + ": " + e.message); }
    }
    return errors;
  `));
  const { outcome, hooks } = await run(bundle);
  assert.deepEqual((outcome as { result: unknown }).result, [
    "RangeError: reportProgress(): percent must be a number from 0 to 100, got -1",
    "RangeError: reportProgress(): percent must be a number from 0 to 100, got 101",
    "RangeError: reportProgress(): percent must be a number from 0 to 100, got NaN",
    "RangeError: reportProgress(): percent must be a number from 0 to 100, got 50",
  ]);
  assert.deepEqual(hooks.progress, []);
});

Deno.test("a thrown error fails the job with its message and a stack with the job's line", async () => {
  const bundle = makeBundle(
    '// line 1\nexport function handler() {\n  throw new Error("Payment declined");\n}\n',
    { name: "pay" },
  );
  const { outcome } = await run(bundle);
  assert.equal(outcome.kind, "failed");
  const failed = outcome as { error: string; stack: string };
  assert.equal(failed.error, "Payment declined");
  assert.match(failed.stack, /^Error: Payment declined\n\s+at handler \(pay\/index\.ts:3:9\)/);
  // The materialized temp copy of the bundle (fluxbase-pay-XXXX/) never shows.
  assert.doesNotMatch(failed.stack, /fluxbase-pay-/);
});

Deno.test("a default export works as the handler; a module without one fails to load", async () => {
  const ok = await run(
    makeBundle("export default (_req, _a, _b, job) => job.getJobPayload().n * 2;"),
    {
      n: 21,
    },
  );
  assert.deepEqual(ok.outcome, { kind: "completed", result: 42, isolateStuck: false });
  const none = await run(makeBundle("export const x = 1;", { name: "nohandler" }));
  assert.equal(none.outcome.kind, "failed");
  assert.equal(
    (none.outcome as { error: string }).error,
    'Cannot load job function "nohandler": The module exports no handler function (export `handler` or a default function)',
  );
});

Deno.test("a syntax error or a throw at module top level fails with a load error", async () => {
  const syntax = await run(makeBundle("export function handler( {\n", { name: "broken" }));
  assert.equal(syntax.outcome.kind, "failed");
  assert.match(
    (syntax.outcome as { error: string }).error,
    /^Cannot load job function "broken": .*/,
  );
  assert.equal(syntax.outcome.isolateStuck, false);
  const top = await run(makeBundle('throw new Error("no config");\nexport function handler() {}'));
  assert.match((top.outcome as { error: string }).error, /Cannot load job function .*no config/);
});

Deno.test("Deno.exit() inside a job fails the job and leaves the process running", async () => {
  const bundle = makeBundle(handlerCode("job.reportProgress(10); Deno.exit(3);"));
  const { outcome, hooks } = await run(bundle);
  assert.deepEqual(outcome, {
    kind: "failed",
    error: "The job called Deno.exit(3)",
    stack: null,
    isolateStuck: false,
  });
  assert.equal(hooks.progress.length, 1);
  // The isolate is gone, not reused: the next job gets a fresh one and completes.
  const again = await run(makeBundle(handlerCode("return 'still here';")));
  assert.equal((again.outcome as { result: unknown }).result, "still here");
});

Deno.test("an unhandled rejection fails the job that caused it", async () => {
  const bundle = makeBundle(handlerCode(`
    Promise.reject(new Error("forgot to await"));
    await new Promise((r) => setTimeout(r, 2000));
    return "not reached";
  `));
  const { outcome } = await run(bundle);
  assert.equal(outcome.kind, "failed");
  assert.equal((outcome as { error: string }).error, "Unhandled rejection: forgot to await");
  assert.equal(outcome.isolateStuck, false);
});

Deno.test("a result that is not JSON fails; undefined becomes null", async () => {
  const cyclic = await run(makeBundle(handlerCode("const a = {}; a.a = a; return a;")));
  assert.match(
    (cyclic.outcome as { error: string }).error,
    /^The handler's return value is not JSON-serializable/,
  );
  const nothing = await run(makeBundle(handlerCode("return undefined;")));
  assert.deepEqual(nothing.outcome, { kind: "completed", result: null, isolateStuck: false });
});

Deno.test("results arrive whole: non-ASCII text, short and long, and a result too big for its slot", async () => {
  const results = [
    "ünï 🙂",
    "x".repeat(127),
    "y".repeat(129),
    { text: "é".repeat(100), n: [1, 2.5, null] },
    "z".repeat(10_000),
  ];
  const bundle = makeBundle(handlerCode("return job.getJobPayload();"));
  for (const result of results) {
    const outcome = await pool.run(bundle, makeJob({ payload: result }), recorder(), LIMITS).done;
    assert.deepEqual(outcome, { kind: "completed", result, isolateStuck: false });
  }
});

Deno.test("platform clients go to the host, also without allow-net", async () => {
  const bundle = makeBundle(handlerCode(`
    const submitted = await fluxbase.jobs.submit("process-next", { batch: 2 });
    const stats = await fluxbaseService.admin.jobs.getStats();
    let direct;
    try { await fetch("http://fluxbase.test/api/v1/jobs"); direct = "reached"; } catch (e) { direct = e.name; }
    return { submitted, stats, direct };
  `));
  const hooks = recorder((req) => ({
    status: 200,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(req.client === "user" ? { id: "job-2", status: "pending" } : { total: 7 }),
  }));
  const outcome = await pool.run(bundle, makeJob(), hooks, LIMITS).done;
  assert.deepEqual((outcome as { result: unknown }).result, {
    submitted: { data: { id: "job-2", status: "pending" }, error: null },
    stats: { data: { total: 7 }, error: null },
    direct: "NotCapable",
  });
  assert.deepEqual(hooks.requests.map((r) => [r.client, r.method, r.path, r.body]), [
    ["user", "POST", "/api/v1/jobs/submit", '{"job_name":"process-next","payload":{"batch":2}}'],
    ["service", "GET", "/api/v1/admin/jobs/stats", null],
  ]);
  assert.equal(hooks.requests[0].headers.authorization, undefined, "the isolate holds no token");
});

Deno.test("a job directory with a sibling, a _shared module and an npm package runs without read permission", async () => {
  const { functions } = await loadFunctionsDir("jobs");
  const fn = functions.find((f) => f.name === "word-stats")!;
  const bundle = makeBundle(fn.code, { files: fn.files, name: fn.name });
  const { outcome } = await run(bundle, { text: "the cat and the hat and the bat" });
  assert.equal(outcome.kind, "completed", JSON.stringify(outcome));
  const result = (outcome as { result: Record<string, unknown> }).result;
  assert.deepEqual(result.top, [["the", 3], ["and", 2], ["bat", 1]]);
  assert.match(String(result.nextDailyRun), /T02:00:00\.000Z$/);
});

Deno.test("a lazy import() of a sibling module works without read permission", async () => {
  const bundle = makeBundle(handlerCode('const m = await import("./lazy.ts"); return m.value;'), {
    files: { "./lazy.ts": "export const value: number = 7;" },
  });
  const { outcome } = await run(bundle);
  assert.deepEqual(outcome, { kind: "completed", result: 7, isolateStuck: false });
});

Deno.test("the spec's basic example job reports progress per item", async () => {
  const { functions } = await loadFunctionsDir("jobs");
  const fn = functions.find((f) => f.name === "process-data")!;
  const { outcome, hooks } = await run(makeBundle(fn.code, { files: fn.files }), {
    items: [1, 2, 3, 4],
  });
  assert.deepEqual(outcome, {
    kind: "completed",
    result: { success: true, processed: 4 },
    isolateStuck: false,
  });
  assert.deepEqual(hooks.progress.map((p) => [p.percent, p.message]), [
    [25, "Processed 1/4"],
    [50, "Processed 2/4"],
    [75, "Processed 3/4"],
    [100, "Processed 4/4"],
  ]);
  assert.equal(hooks.logs[0].message, "Running for user: user1@example.com");
});

Deno.test("cross-isolate channels are gone before job code loads", async () => {
  const bundle = makeBundle(
    `const seen = [typeof BroadcastChannel, typeof caches, typeof navigator.locks];
export function handler() { return seen; }`,
  );
  const { outcome } = await run(bundle);
  assert.deepEqual((outcome as { result: unknown }).result, [
    "undefined",
    "undefined",
    "undefined",
  ]);
});

Deno.test("shutdown stops the pool's isolates", async () => {
  await pool.shutdown();
  assert.deepEqual(pool.stats(), { idle: 0, running: 0 });
});
