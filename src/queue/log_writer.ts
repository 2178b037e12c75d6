/**
 * Batches console lines of running jobs: every `intervalMs` (or when a job ends) all pending
 * lines go out in one statement, into `jobs.logs` (one row per line, streamed by realtime) and
 * the job's `logs` text. A job keeps at most `maxLines` lines over all its attempts; the line
 * after that is one truncation marker, the rest are dropped.
 */
import type { Sql } from "../db/pool.ts";
import { BatchedFlush } from "./batched_flush.ts";
import { logInsertMany, type LogRow } from "./log_queries.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";

interface JobLog {
  /** Line number of the last line taken (continues after earlier attempts). */
  last: number;
  truncated: boolean;
  /** Lines taken and not yet handed to a write. */
  pending: number;
}

export class LogWriter {
  #jobs = new Map<string, JobLog>();
  #pending: LogRow[] = [];
  readonly #flush: BatchedFlush;

  constructor(
    private readonly sql: Sql,
    private readonly workerId: string,
    private readonly maxLines: number,
    intervalMs = 200,
  ) {
    this.#flush = new BatchedFlush(intervalMs, () => this.#write());
  }

  /**
   * A line of a running job; `previousLines`: the lines of its earlier attempts, which this
   * attempt's continue after. A job's count starts with its first line (most jobs print none).
   */
  write(
    jobId: string,
    previousLines: number,
    level: LogLevel,
    message: string,
    at = new Date(),
  ): void {
    let job = this.#jobs.get(jobId);
    if (!job) {
      job = { last: previousLines, truncated: previousLines >= this.maxLines, pending: 0 };
      this.#jobs.set(jobId, job);
    }
    if (job.truncated) return;
    if (job.last >= this.maxLines) {
      job.truncated = true;
      message = `log truncated: more than ${this.maxLines} lines`;
      level = "warn";
    }
    job.last++;
    job.pending++;
    this.#pending.push({
      job_id: jobId,
      line_number: job.last,
      level,
      message,
      created_at: at.toISOString(),
    });
    this.#flush.schedule();
  }

  #hasPending(jobId: string): boolean {
    return (this.#jobs.get(jobId)?.pending ?? 0) > 0;
  }

  /**
   * Flushes pending lines (call before recording a job's end, so its logs are complete) and
   * forgets the job. Not async: a job without pending lines (most) ends at once, with no
   * promise made for it.
   */
  end(jobId: string): Promise<void> | void {
    if (!this.#hasPending(jobId)) {
      this.#jobs.delete(jobId);
      return;
    }
    return this.flush().then(() => {
      this.#jobs.delete(jobId);
    });
  }

  flush(): Promise<void> {
    return this.#flush.flush();
  }

  stop(): Promise<void> {
    return this.#flush.stop();
  }

  #write(): Promise<void> | null {
    if (this.#pending.length === 0) return null;
    const rows = this.#pending;
    this.#pending = [];
    for (const row of rows) {
      const job = this.#jobs.get(row.job_id);
      if (job) job.pending--;
    }
    return logInsertMany(this.sql, this.workerId, rows).catch((e) => {
      console.error(`Log write of ${rows.length} lines failed: ${(e as Error).message}`);
    });
  }
}
