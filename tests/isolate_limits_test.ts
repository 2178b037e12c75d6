import assert from "node:assert/strict";
import { IsolatePool } from "../src/isolate/pool.ts";
import { handlerCode, LIMITS, makeBundle, makeJob, recorder } from "./fixtures/isolate/harness.ts";

const pool = new IsolatePool();
const RUNAWAY = new URL("./fixtures/isolate/runaway.ts", import.meta.url).pathname;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runaway(mode: string, v8Flags: string[] = []) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", ...v8Flags, RUNAWAY, mode],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n").filter(Boolean);
  return {
    output,
    results: lines.map((l) => JSON.parse(l)),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("a job that runs too long times out", async () => {
  const bundle = makeBundle(handlerCode("await new Promise((r) => setTimeout(r, 60_000));"));
  const started = performance.now();
  const outcome = await pool.run(bundle, makeJob(), recorder(), { ...LIMITS, timeoutMs: 1000 })
    .done;
  assert.deepEqual(outcome, {
    kind: "timed_out",
    error: "timed out after 1 s",
    isolateStuck: false,
  });
  assert.ok(performance.now() - started < 3000);
});

Deno.test("a job that stops reporting progress fails with a progress timeout", async () => {
  const bundle = makeBundle(handlerCode(`
    for (let i = 0; i < 3; i++) { job.reportProgress(i * 10); await new Promise((r) => setTimeout(r, 200)); }
    await new Promise((r) => setTimeout(r, 60_000));
  `));
  const hooks = recorder();
  const outcome = await pool.run(bundle, makeJob(), hooks, { ...LIMITS, progressTimeoutMs: 700 })
    .done;
  assert.deepEqual(outcome, {
    kind: "progress_timed_out",
    error: "no progress reported for 0.7 s",
    isolateStuck: false,
  });
  assert.equal(hooks.progress.length, 3, "progress kept the job alive past 0.7 s");
});

Deno.test("a slow module load is no silence of the job's: the progress clock starts when it runs", async () => {
  // The module takes 1.5 s to evaluate (as a big npm import may); the handler then reports at
  // once and finishes within its 0.5 s progress limit.
  const bundle = makeBundle(
    `await new Promise((r) => setTimeout(r, 1500));\n` +
      handlerCode(
        `job.reportProgress(50); await new Promise((r) => setTimeout(r, 300)); return "done";`,
      ),
  );
  const hooks = recorder();
  const outcome = await pool.run(bundle, makeJob(), hooks, { ...LIMITS, progressTimeoutMs: 500 })
    .done;
  assert.deepEqual(outcome, { kind: "completed", result: "done", isolateStuck: false });
  assert.equal(hooks.progress.length, 1);
});

Deno.test("cancel(): checkCancellation() turns true within 1 s in a loop that never awaits", async () => {
  const bundle = makeBundle(handlerCode(`
    job.reportProgress(1, "spinning");
    let spins = 0;
    while (!job.checkCancellation()) spins++;
    return { spins, env: Deno.env.get("FLUXBASE_JOB_CANCELLED"), isCancelled: await job.isCancelled() };
  `));
  let started!: () => void;
  const spinning = new Promise<void>((resolve) => (started = resolve));
  const hooks = { ...recorder(), onProgress: () => started() };
  const handle = pool.run(bundle, makeJob(), hooks, { ...LIMITS, cancelGraceMs: 5000 });
  await spinning;
  await sleep(100);
  const cancelledAt = performance.now();
  handle.cancel();
  const outcome = await handle.done;
  const ms = performance.now() - cancelledAt;
  console.log(`cancel -> handler returned in ${ms.toFixed(1)} ms`);
  assert.deepEqual(outcome, { kind: "cancelled", isolateStuck: false });
  assert.ok(ms < 1000, `took ${ms} ms`);
});

Deno.test("cancel(): a handler that ignores it is terminated after the grace period", async () => {
  const bundle = makeBundle(handlerCode("await new Promise((r) => setTimeout(r, 60_000));"));
  const handle = pool.run(bundle, makeJob(), recorder(), { ...LIMITS, cancelGraceMs: 300 });
  await sleep(300);
  const cancelledAt = performance.now();
  handle.cancel();
  const outcome = await handle.done;
  const ms = performance.now() - cancelledAt;
  assert.deepEqual(outcome, { kind: "cancelled", isolateStuck: false });
  assert.ok(ms >= 290 && ms < 2000, `took ${ms} ms`);
});

Deno.test("terminate() stops a running job at once with the given reason", async () => {
  const bundle = makeBundle(handlerCode("await new Promise((r) => setTimeout(r, 60_000));"));
  const handle = pool.run(bundle, makeJob(), recorder(), LIMITS);
  await sleep(300);
  handle.terminate("Terminated by an admin");
  assert.deepEqual(await handle.done, {
    kind: "terminated",
    error: "Terminated by an admin",
    isolateStuck: false,
  });
});

Deno.test("an infinite loop times out and is reported as a stuck isolate", async (t) => {
  for (const mode of ["loop", "micro"]) {
    await t.step(mode, async () => {
      const { results } = await runaway(mode);
      assert.deepEqual(results[0].outcome, {
        kind: "timed_out",
        error: "timed out after 0.5 s",
        isolateStuck: true,
      });
    });
  }
});

Deno.test("an isolate out of memory aborts its whole process (the worker process must recycle)", async () => {
  const { output, results, stderr } = await runaway("oom", ["--v8-flags=--max-old-space-size=96"]);
  assert.deepEqual(results, [{ started: true }], "the process did not survive to print more");
  assert.equal(output.success, false);
  assert.equal(output.signal, "SIGTRAP");
  assert.match(stderr, /Fatal JavaScript out of memory: Reached heap limit/);
});

Deno.test("warm reuse is faster than a cold start (figures printed)", async () => {
  const { results } = await runaway("warm");
  const { coldMs, warmMedianMs, warmP95Ms, results: values } = results[0];
  console.log(
    `cold start ${coldMs.toFixed(1)} ms; warm run median ${warmMedianMs.toFixed(2)} ms, p95 ${
      warmP95Ms.toFixed(2)
    } ms`,
  );
  assert.deepEqual(values, Array.from({ length: 51 }, (_, i) => i));
});

Deno.test("shutdown terminates running jobs", async () => {
  const handle = pool.run(
    makeBundle(handlerCode("await new Promise(() => {});")),
    makeJob(),
    recorder(),
    LIMITS,
  );
  await sleep(200);
  await pool.shutdown();
  assert.deepEqual(await handle.done, {
    kind: "terminated",
    error: "The isolate pool is shut down",
    isolateStuck: false,
  });
});
