/**
 * Isolate pool benchmark: no-op runs through `IsolatePool` alone (no database), `concurrency`
 * at a time, after a warm-up that gives every run a warm isolate. Prints runs/s and the CPU
 * time per run of the whole process (host thread, isolate threads, V8's helpers), read from
 * /proc/self/stat. This is the ceiling the engine's isolate path puts on a worker process.
 *
 * Environment: BENCH_POOL_RUNS (60000), BENCH_CONCURRENCY (50).
 */
import { buildJobEnv } from "../src/isolate/env.ts";
import { IsolatePool } from "../src/isolate/pool.ts";
import type { FunctionBundle, RunHooks, RunLimits } from "../src/isolate/types.ts";
import { processCpuMicros } from "./stats.ts";

const BUNDLE: FunctionBundle = {
  id: "bench-noop",
  name: "noop",
  namespace: "default",
  version: 1,
  code: "export function handler() { return Date.now(); }",
  files: {},
  permissions: {},
  memoryLimitMb: null,
};
const HOOKS: RunHooks = {
  onProgress() {},
  onLog() {},
  onPlatformRequest: () => Promise.reject(new Error("no platform in this benchmark")),
};
const LIMITS: RunLimits = { timeoutMs: 300_000, progressTimeoutMs: null, cancelGraceMs: 5000 };

export interface PoolFigures {
  runsPerSecond: number;
  cpuMicrosPerRun: number;
}

export async function benchPool(
  runs = Number(Deno.env.get("BENCH_POOL_RUNS") ?? 60_000),
  concurrency = Number(Deno.env.get("BENCH_CONCURRENCY") ?? 50),
): Promise<PoolFigures> {
  const pool = new IsolatePool({ maxIdlePerFunction: concurrency });
  const serverEnv = buildJobEnv(
    Deno.env.toObject(),
    { jobId: "", jobName: "", namespace: "" },
    "",
  );
  const lane = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const jobId = crypto.randomUUID();
      const job = {
        jobId,
        jobName: "noop",
        namespace: "default",
        retryCount: 0,
        payload: {},
        user: null,
        env: buildJobEnv(
          serverEnv,
          { jobId, jobName: "noop", namespace: "default" },
          "http://127.0.0.1:8080",
        ),
      };
      const outcome = await pool.run(BUNDLE, job, HOOKS, LIMITS).done;
      if (outcome.kind !== "completed") throw new Error(`A no-op run ended ${outcome.kind}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, () => lane(20)));
    const cpu0 = processCpuMicros();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, () => lane(Math.ceil(runs / concurrency))),
    );
    const total = Math.ceil(runs / concurrency) * concurrency;
    const figures = {
      runsPerSecond: total / ((performance.now() - t0) / 1000),
      cpuMicrosPerRun: (processCpuMicros() - cpu0) / total,
    };
    console.log(
      `isolate pool (no database): ${Math.round(figures.runsPerSecond)} no-op runs/s at ` +
        `concurrency ${concurrency}, ${figures.cpuMicrosPerRun.toFixed(0)} us CPU per run`,
    );
    return figures;
  } finally {
    await pool.shutdown();
  }
}

if (import.meta.main) {
  await benchPool();
  Deno.exit(0);
}
