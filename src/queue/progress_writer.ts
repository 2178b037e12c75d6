/**
 * Coalesces progress reports: each running job keeps only its latest report, and all dirty
 * jobs are written together every `intervalMs` in one statement. A job that reports 100,000
 * times costs at most 1000 / intervalMs writes a second; its last report is always written,
 * by the completion or failure of the job (`take()`) or by the next flush.
 */
import type { Sql } from "../db/pool.ts";
import { BatchedFlush } from "./batched_flush.ts";
import { jobProgressUpdateMany } from "./job_queries.ts";

export interface Progress {
  percent: number;
  message: string | null;
  data?: unknown;
}

export class ProgressWriter {
  #dirty = new Map<string, Progress>();
  readonly #flush: BatchedFlush;

  constructor(
    private readonly sql: Sql,
    private readonly workerId: string,
    intervalMs = 250,
  ) {
    this.#flush = new BatchedFlush(intervalMs, () => this.#write());
  }

  report(jobId: string, progress: Progress): void {
    this.#dirty.set(jobId, progress);
    this.#flush.schedule();
  }

  /** Removes and returns the unwritten progress of a job that ended (written with its end). */
  take(jobId: string): Progress | null {
    const p = this.#dirty.get(jobId) ?? null;
    this.#dirty.delete(jobId);
    return p;
  }

  flush(): Promise<void> {
    return this.#flush.flush();
  }

  /** Writes what is pending and stops the timer. Safe twice. */
  stop(): Promise<void> {
    return this.#flush.stop();
  }

  #write(): Promise<void> | null {
    if (this.#dirty.size === 0) return null;
    const updates = [...this.#dirty].map(([id, progress]) => ({ id, progress }));
    this.#dirty.clear();
    return jobProgressUpdateMany(this.sql, this.workerId, updates).catch((e) => {
      // Progress is advisory: a lost write is superseded by the next report or the end.
      console.error(`Progress write failed: ${(e as Error).message}`);
    });
  }
}
