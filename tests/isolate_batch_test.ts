/**
 * Runs of quick functions travel in batches and queue on a busy isolate (pool.ts). Each still
 * runs alone, gets its own outcome, and loses nothing when a run ahead of it hangs or when it
 * is cancelled while it waits.
 */
import assert from "node:assert/strict";
import { IsolatePool } from "../src/isolate/pool.ts";
import type { FunctionBundle, RunLimits, RunOutcome } from "../src/isolate/types.ts";
import { LIMITS, makeBundle, makeJob, recorder } from "./fixtures/isolate/harness.ts";

/** Module state tells the isolates apart; `hang` never returns, `sleep` waits that many ms. */
const CODE = `
const ISOLATE = crypto.randomUUID();
let runsHere = 0;
export async function handler(req, fluxbase, fluxbaseService, job) {
  const p = job.getJobPayload();
  runsHere++;
  console.log("run " + p.i);
  if (p.hang) await new Promise(() => {});
  if (p.spin) { const end = performance.now() + p.spin; while (performance.now() < end); }
  if (p.sleep) await new Promise((r) => setTimeout(r, p.sleep));
  if (p.big) return "x".repeat(p.big);
  if (p.bigError) throw new Error("e".repeat(p.bigError));
  return { i: p.i, isolate: ISOLATE, jobId: Deno.env.get("FLUXBASE_JOB_ID"), runsHere,
    cancelled: job.checkCancellation() };
}
`;

/** One turn, so runs queue; "quick" generous enough for a loaded test machine. */
const POOL = { maxActive: 1, maxIdlePerFunction: 8, quickMs: 100 };

interface Result {
  i: number;
  isolate: string;
  jobId: string;
  runsHere: number;
  cancelled: boolean;
}

function start(
  pool: IsolatePool,
  bundle: FunctionBundle,
  payload: Record<string, unknown>,
  limits: RunLimits = LIMITS,
) {
  const hooks = recorder();
  const job = makeJob({ payload });
  const handle = pool.run(bundle, job, hooks, limits);
  return { job, hooks, handle };
}

function resultOf(outcome: RunOutcome): Result {
  assert.equal(outcome.kind, "completed", JSON.stringify(outcome));
  return (outcome as { result: Result }).result;
}

/** Enough one-at-a-time runs for the pool to see the function is quick. */
async function warm(pool: IsolatePool, bundle: FunctionBundle) {
  for (let i = 0; i < 8; i++) resultOf(await start(pool, bundle, { i }).handle.done);
}

/** A pool of one turn with CODE warmed up (quick), shut down afterwards. */
async function withWarmPool(test: (pool: IsolatePool, bundle: FunctionBundle) => Promise<void>) {
  const pool = new IsolatePool(POOL);
  try {
    const bundle = makeBundle(CODE);
    await warm(pool, bundle);
    await test(pool, bundle);
  } finally {
    await pool.shutdown();
  }
}

Deno.test("quick runs share a busy isolate, and each gets its own outcome and environment", () =>
  withWarmPool(async (pool, bundle) => {
    const runs = Array.from({ length: 40 }, (_, i) => start(pool, bundle, { i: 100 + i }));
    const results = await Promise.all(runs.map(async (r) => resultOf(await r.handle.done)));
    results.forEach((result, k) => {
      assert.equal(result.i, 100 + k);
      assert.equal(result.jobId, runs[k].job.jobId);
      assert.equal(result.cancelled, false);
      assert.deepEqual(runs[k].hooks.logs.map((l) => l.message), [`run ${100 + k}`]);
    });
    const perIsolate = new Map<string, number>();
    for (const r of results) perIsolate.set(r.isolate, (perIsolate.get(r.isolate) ?? 0) + 1);
    assert.ok(perIsolate.size < 10, `40 runs used ${perIsolate.size} isolates`);
    assert.ok(Math.max(...perIsolate.values()) >= 10, JSON.stringify([...perIsolate.values()]));
  }));

Deno.test("in long batches, each run's log lines reach it before its outcome does", () =>
  withWarmPool(async (pool, bundle) => {
    // The host hears of finished runs every 16 runs while the isolate goes on; a run that
    // finishes after such a message must not be ended before its own log message arrives.
    for (let round = 0; round < 5; round++) {
      const runs = Array.from({ length: 60 }, (_, i) => start(pool, bundle, { i: 1000 + i }));
      await Promise.all(runs.map((r) => r.handle.done));
      runs.forEach((r, k) =>
        assert.deepEqual(r.hooks.logs.map((l) => l.message), [`run ${1000 + k}`], `round ${round}`)
      );
    }
  }));

Deno.test("runs that take a few ms each are spread over isolates, not queued on one", async () => {
  const pool = new IsolatePool({ ...POOL, maxActive: 4 });
  try {
    const bundle = makeBundle(CODE);
    for (let i = 0; i < 8; i++) resultOf(await start(pool, bundle, { i, spin: 3 }).handle.done);
    const runs = Array.from({ length: 20 }, (_, i) => start(pool, bundle, { i, spin: 3 }));
    const results = await Promise.all(runs.map(async (r) => resultOf(await r.handle.done)));
    const isolates = new Set(results.map((r) => r.isolate));
    assert.ok(isolates.size >= 3, `20 runs of 3 ms used ${isolates.size} isolates`);
  } finally {
    await pool.shutdown();
  }
});

Deno.test("runs queued behind one that hangs move to another isolate and complete", () =>
  withWarmPool(async (pool, bundle) => {
    const limits = { ...LIMITS, timeoutMs: 1000 };
    const hang = start(pool, bundle, { i: 0, hang: true }, limits);
    const behind = Array.from({ length: 10 }, (_, i) => start(pool, bundle, { i: 1 + i }, limits));
    const hung = await hang.handle.done;
    assert.equal(hung.kind, "timed_out");
    assert.equal(hung.isolateStuck, false);
    const results = await Promise.all(behind.map(async (r) => resultOf(await r.handle.done)));
    assert.deepEqual(results.map((r) => r.i), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Each ran once: one log line each, none of them in the isolate that was stopped.
    for (const r of behind) assert.equal(r.hooks.logs.length, 1);
    assert.equal(hang.hooks.logs.length, 1);
  }));

Deno.test("a run cancelled while queued is taken back; the run ahead of it is not disturbed", () =>
  withWarmPool(async (pool, bundle) => {
    const limits = { ...LIMITS, cancelGraceMs: 50 };
    const ahead = start(pool, bundle, { i: 1, sleep: 400 }, limits);
    const queued = start(pool, bundle, { i: 2 }, limits);
    const after = start(pool, bundle, { i: 3 }, limits);
    await new Promise((r) => setTimeout(r, 50));
    queued.handle.cancel();
    assert.equal((await queued.handle.done).kind, "cancelled");
    const first = resultOf(await ahead.handle.done);
    const third = resultOf(await after.handle.done);
    assert.equal(first.i, 1);
    assert.equal(third.i, 3);
    assert.equal(third.isolate, first.isolate, "the isolate kept serving its queue");
    assert.deepEqual(queued.hooks.logs, [], "the cancelled run never started");
  }));

Deno.test("an admin terminate of a queued run takes it back; of the running one, stops it", () =>
  withWarmPool(async (pool, bundle) => {
    const running = start(pool, bundle, { i: 1, hang: true });
    const queued = start(pool, bundle, { i: 2 });
    const behind = start(pool, bundle, { i: 3 });
    await new Promise((r) => setTimeout(r, 50));
    queued.handle.terminate("Terminated by an administrator");
    assert.deepEqual(await queued.handle.done, {
      kind: "terminated",
      error: "Terminated by an administrator",
      isolateStuck: false,
    });
    running.handle.terminate("Terminated by an administrator");
    assert.equal((await running.handle.done).kind, "terminated");
    assert.equal(resultOf(await behind.handle.done).i, 3);
    assert.deepEqual(queued.hooks.logs, []);
  }));

Deno.test("outcomes larger than the shared slot arrive whole", () =>
  withWarmPool(async (pool, bundle) => {
    const big = start(pool, bundle, { i: 1, big: 100_000 });
    const small = start(pool, bundle, { i: 2 });
    const bigError = start(pool, bundle, { i: 3, bigError: 20_000 });
    const outcome = await big.handle.done;
    assert.equal(outcome.kind, "completed");
    assert.equal((outcome as { result: string }).result, "x".repeat(100_000));
    assert.equal(resultOf(await small.handle.done).i, 2);
    const failed = await bigError.handle.done;
    assert.equal(failed.kind, "failed");
    assert.equal((failed as { error: string }).error, "e".repeat(20_000));
  }));
