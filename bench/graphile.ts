/**
 * graphile-worker 0.18 under the same load: tuned, its best configuration on this machine (local
 * queue plus batched completion, at the same concurrency; the issue quotes ~7,000 jobs/s), or
 * with its default settings (the issue quotes ~1,900 jobs/s).
 */
// deno-lint-ignore no-import-prefix -- a bench-only dependency, kept out of the server's imports
import { Logger, makeWorkerUtils, run } from "npm:graphile-worker@0.18.0";
import type { JobsBenchOptions } from "./jobs.ts";
import {
  cpuPerJob,
  type CpuSample,
  cpuSample,
  percentile,
  type RunFigures,
  waitUntil,
} from "./stats.ts";

/** graphile-worker's localQueue.size here; Fluxbase gets a local queue of the same size. */
export const GRAPHILE_LOCAL_QUEUE = 500;

/** `tuned`: local queue, batched completion and `opts.concurrency`; otherwise its defaults. */
export async function runGraphile(
  url: string,
  opts: JobsBenchOptions,
  tuned: boolean,
): Promise<RunFigures> {
  const utils = await makeWorkerUtils({ connectionString: url });
  await utils.migrate();
  let done = 0;
  const starts = new Map<string, number>();
  const runner = await run({
    connectionString: url,
    // Its defaults: concurrency 1, no local queue, each completion its own statement.
    ...(tuned ? { concurrency: opts.concurrency, pollInterval: 1000 } : {}),
    noHandleSignals: true,
    taskList: {
      noop: (payload: unknown) => {
        const key = (payload as { key?: string } | null)?.key;
        if (key) starts.set(key, Date.now());
        done++;
        return Promise.resolve();
      },
    },
    // Silent: the bench prints its own lines.
    logger: new Logger(() => () => {}),
    preset: tuned
      ? {
        worker: {
          localQueue: { size: GRAPHILE_LOCAL_QUEUE },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      }
      : undefined,
  });
  try {
    const addMany = (count: number) =>
      utils.addJobs(
        Array.from({ length: count }, () => ({
          identifier: "noop",
          payload: opts.payload,
          maxAttempts: 1,
        })),
      );
    const warmUp = opts.concurrency * 10;
    await addMany(warmUp);
    await waitUntil(
      "graphile warm-up",
      () => Promise.resolve(done === warmUp),
      60_000,
    );
    const rounds: number[] = [];
    const cpu: CpuSample[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      done = 0;
      const cpu0 = cpuSample();
      const t0 = performance.now();
      await addMany(opts.n);
      await waitUntil("graphile jobs", () => Promise.resolve(done === opts.n), 300_000, 5);
      // The last handlers have run; their completions (batched deletes) may still be on the
      // way. The round ends when they are recorded, as Fluxbase's does (bench/jobs.ts): 2-26 ms
      // later here. It polls the first entry of the jobs' primary key, only during that tail.
      await waitUntil(
        "graphile completions",
        async () => {
          const { rows } = await utils.withPgClient((client) =>
            client.query(`select exists (select 1 from graphile_worker._private_jobs
                                       order by id limit 1) as left`)
          );
          return !rows[0].left;
        },
        300_000,
        1,
      );
      rounds.push(opts.n / ((performance.now() - t0) / 1000));
      cpu.push(cpuPerJob(cpu0, cpuSample(), opts.n));
    }

    const latencies: number[] = [];
    for (let i = 0; i < opts.latencySamples; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const key = `k${i}`;
      const before = Date.now();
      await utils.addJob("noop", { key }, { maxAttempts: 1 });
      const started = await waitUntil(
        "a graphile latency sample",
        () => Promise.resolve(starts.get(key)),
        10_000,
        1,
      );
      latencies.push(started - before);
    }
    return { rounds, cpu, latency: percentile(latencies) };
  } finally {
    await runner.stop();
    await utils.release();
  }
}
