/**
 * Finds dead workers: one whose last heartbeat is older than `worker_timeout` is declared dead
 * and the running jobs it held become failed attempts ("worker lost"): pending again after
 * the backoff, or failed when out of attempts. Runs in every worker process and in the API
 * process; the rescue is one idempotent statement, so any number of rescuers agree.
 */
import type { JobsConfig } from "../config.ts";
import type { Sql } from "../db/pool.ts";
import { coerceError } from "../errors.ts";
import { type RescuedJob, workerRescueStale } from "./worker_queries.ts";

export const WORKER_LOST = "worker lost: its worker stopped sending heartbeats";

export interface RescuerOptions {
  sql: Sql;
  config: JobsConfig;
  /** Default: half the worker timeout, so a dead worker's jobs wait at most 1.5 timeouts. */
  intervalMs?: number;
  onRescue?: (jobs: RescuedJob[]) => void;
}

export class Rescuer {
  #timer: ReturnType<typeof setInterval> | null = null;
  #pass: Promise<unknown> | null = null;

  constructor(private readonly opts: RescuerOptions) {}

  start(): void {
    if (this.#timer !== null) return;
    const every = this.opts.intervalMs ?? Math.max(250, this.opts.config.workerTimeoutMs / 2);
    this.#timer = setInterval(() => {
      this.#pass ??= this.rescue().catch((e) => {
        console.error(`Rescue of dead workers failed: ${coerceError(e).message}`);
      }).finally(() => (this.#pass = null));
    }, every);
  }

  /** One pass; returns the jobs it rescued. */
  async rescue(): Promise<RescuedJob[]> {
    const { sql, config } = this.opts;
    const jobs = await workerRescueStale(sql, config.workerTimeoutMs, WORKER_LOST, config);
    if (jobs.length > 0) this.opts.onRescue?.(jobs);
    return jobs;
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#pass;
  }
}
