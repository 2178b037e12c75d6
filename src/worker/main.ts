/**
 * The body of a worker process (`main.ts worker`, `deno task worker`): one JobWorker, a
 * rescuer, signal handling, and the process exit. It ends the process itself, because an
 * isolate stuck in a synchronous loop keeps its thread (and so the process) alive after
 * terminate() (DESIGN.md, measured on Deno 2.9.6).
 *
 * Exit codes: 0 after a shutdown by signal; RECYCLE_EXIT_CODE when the process must be
 * replaced (an isolate did not stop, or the rescuer declared this worker dead), which the
 * supervisor answers with an immediate restart.
 */
import type { Config } from "../config.ts";
import { createPool } from "../db/pool.ts";
import { coerceError } from "../errors.ts";
import { visibleServerEnv, withJobValues } from "../isolate/env.ts";
import { IsolatePool } from "../isolate/pool.ts";
import { Rescuer } from "../queue/rescuer.ts";
import { RECYCLE_EXIT_CODE, takeWorkerBoot, type WorkerBoot } from "./boot.ts";
import { JobWorker } from "./job_worker.ts";
import { createPlatformHandler } from "./platform.ts";

export interface RunWorkerOptions {
  config: Config;
  databaseUrl: string;
  jwtSecret: string;
  /** Default true: end the process when the worker stops. */
  exit?: boolean;
  /** A supervisor's boot record already taken from the environment (process.ts). */
  boot?: WorkerBoot | null;
}

export async function runWorker(opts: RunWorkerOptions): Promise<void> {
  const boot = opts.boot ?? takeWorkerBoot();
  const config = boot?.config ?? opts.config;
  const databaseUrl = boot?.databaseUrl ?? opts.databaseUrl;
  const jwtSecret = boot?.jwtSecret ?? opts.jwtSecret;
  const jobs = config.jobs;
  const sql = createPool(databaseUrl, {
    // Claims, batched writes and platform calls of jobs share the pool; LISTEN has its own.
    max: Math.min(20, 6 + Math.ceil(jobs.maxConcurrentPerWorker / 10)),
    applicationName: `fluxbase-worker-${boot?.name ?? Deno.pid}`,
  });
  // Claims commit asynchronously, on a connection of their own: a claim holds the claim lock
  // until it commits, so waiting for the disk there held up every worker's claims (default
  // layout, 4 workers, paired runs: 990-1,380 jobs/s with durable claims, 1,360-2,360 without).
  // A claim lost in a database crash only returns its jobs to pending, to run again; every other
  // write (submits, completions, failures, progress, logs) stays durable, and its commit also
  // makes the claims before it durable (the WAL is flushed in order), so nothing recorded about a
  // run can outlive its claim. docs/state_machine.md, "pending -> running".
  const claimSql = createPool(databaseUrl, {
    max: 1,
    applicationName: `fluxbase-worker-${boot?.name ?? Deno.pid}-claims`,
    synchronousCommit: "off",
  });
  // The server's FLUXBASE_* variables a job may see, filtered once rather than for every job.
  const serverEnv = visibleServerEnv(Deno.env.toObject());
  // Keep as many warm isolates per function as there are slots: a job that finds none idle
  // pays 30-100 ms to create one (DESIGN.md), which would cap throughput.
  const pool = new IsolatePool({ maxIdlePerFunction: jobs.maxConcurrentPerWorker });
  let exitCode = 0;
  let stopRequested: (grace: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => (stopRequested = resolve));

  const worker = new JobWorker({
    sql,
    claimSql,
    config: jobs,
    executor: pool,
    id: boot?.id,
    name: boot?.name,
    platform: createPlatformHandler({ config, sql, jwtSecret }),
    jobEnv: (job) =>
      withJobValues(
        serverEnv,
        { jobId: job.id, jobName: job.job_name, namespace: job.namespace },
        config.publicUrl,
      ),
    onRecycle: (reason) => {
      exitCode = RECYCLE_EXIT_CODE;
      // Declared dead: our jobs already belong to others, so do not wait for them.
      stopRequested(reason.includes("declared") ? 0 : jobs.shutdownGraceMs);
    },
  });
  const rescuer = new Rescuer({ sql, config: jobs });
  const onSignal = () => stopRequested(jobs.shutdownGraceMs);
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    await worker.start();
    rescuer.start();
    const grace = await stopped;
    await rescuer.stop();
    await worker.stop(grace);
  } catch (e) {
    console.error(`Worker ${worker.name} failed: ${coerceError(e).stack}`);
    exitCode = 1;
  } finally {
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
    // A stuck isolate may never acknowledge; the process exit below ends it anyway.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([pool.shutdown(), new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    await Promise.all([sql, claimSql].map((db) => db.end({ timeout: 2 }).catch(() => {})));
  }
  if (opts.exit !== false) Deno.exit(exitCode);
}
