/**
 * Coalesces progress reports: each running job keeps only its latest report, and all dirty
 * jobs are written together every `intervalMs` in one statement. A job that reports 100,000
 * times costs at most 1000 / intervalMs writes a second; its last report is always written,
 * by the completion or failure of the job (`take()`) or by the next flush.
 */
import type { Sql } from "../db/pool.ts";
import { jobProgressUpdateMany } from "./job_queries.ts";

export interface Progress {
  percent: number;
  message: string | null;
  data?: unknown;
}

export class ProgressWriter {
  #dirty = new Map<string, Progress>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #flushing: Promise<void> | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly workerId: string,
    private readonly intervalMs = 250,
  ) {}

  report(jobId: string, progress: Progress): void {
    this.#dirty.set(jobId, progress);
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.intervalMs);
  }

  /** Removes and returns the unwritten progress of a job that ended (written with its end). */
  take(jobId: string): Progress | null {
    const p = this.#dirty.get(jobId) ?? null;
    this.#dirty.delete(jobId);
    return p;
  }

  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#dirty.size === 0) return;
    const updates = [...this.#dirty].map(([id, progress]) => ({ id, progress }));
    this.#dirty.clear();
    this.#flushing = jobProgressUpdateMany(this.sql, this.workerId, updates).catch((e) => {
      // Progress is advisory: a lost write is superseded by the next report or the end.
      console.error(`Progress write failed: ${(e as Error).message}`);
    });
    await this.#flushing;
    this.#flushing = null;
  }

  /** Writes what is pending and stops the timer. Safe twice. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.flush();
  }
}
