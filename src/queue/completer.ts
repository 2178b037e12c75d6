/**
 * Batched completion (graphile-worker's local queue does the same): finished jobs wait for the
 * write in flight, then all of them go out in one statement. Under load a batch fills while
 * the previous one is being written, so the number of statements per job drops as throughput
 * rises; with one job the write starts at once, so an idle system adds no latency.
 */
import type { Sql } from "../db/pool.ts";
import {
  type Completion,
  type Failure,
  jobCompleteManyIfRunning,
  jobFailManyIfRunning,
  jobReleaseManyIfRunning,
} from "./job_queries.ts";

/** Attempts of one batch write before its jobs are left to the rescuer. */
const WRITE_ATTEMPTS = 8;

/**
 * Nothing waits on a single job's write: a queued job costs its one small item until its batch
 * is written. A promise per job kept each finished job's run (slot, execution, hooks, async
 * frames) alive until then, and under load the queue is long: 500-1,800 jobs in a 10,000-job
 * bench round, 18,700 at one point of a 150,000-job one (heap snapshot). Those runs survived
 * the young generation's scavenges (a third of it each time) and were copied, promoted and
 * marked; without them a 100,000-job run spent 350 instead of 620 ms in scavenges.
 */
export class Completer {
  #completes: Completion[] = [];
  #fails: Failure[] = [];
  #releases: string[] = [];
  #running: Promise<void> | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly workerId: string,
    /** Called after each batch is written (or given up): the jobs in it no longer run. */
    private readonly onWritten: () => void = () => {},
    private readonly maxBatch = 200,
  ) {}

  complete(item: Completion): void {
    this.#completes.push(item);
    this.#running ??= this.#loop();
  }

  fail(item: Failure): void {
    this.#fails.push(item);
    this.#running ??= this.#loop();
  }

  /** Back to pending without charging an attempt. */
  release(id: string): void {
    this.#releases.push(id);
    this.#running ??= this.#loop();
  }

  /** Resolves when everything queued so far is written. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #loop(): Promise<void> {
    while (this.#completes.length + this.#fails.length + this.#releases.length > 0) {
      const completes = this.#completes.splice(0, this.maxBatch);
      const fails = this.#fails.splice(0, this.maxBatch);
      const releases = this.#releases.splice(0, this.maxBatch);
      await Promise.all([
        completes.length > 0 &&
        this.#write(() => jobCompleteManyIfRunning(this.sql, this.workerId, completes)),
        fails.length > 0 &&
        this.#write(() => jobFailManyIfRunning(this.sql, this.workerId, fails)),
        releases.length > 0 &&
        this.#write(() => jobReleaseManyIfRunning(this.sql, this.workerId, releases)),
      ]);
      this.onWritten();
    }
    this.#running = null;
  }

  /**
   * Retries a write across a short database outage. When it keeps failing the jobs stay
   * running under this worker; if the worker then dies, the rescuer retries them.
   */
  async #write(fn: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        await fn();
        return;
      } catch (e) {
        if (attempt >= WRITE_ATTEMPTS) {
          console.error(`Giving up a job state write: ${(e as Error).message}`);
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
  }
}
