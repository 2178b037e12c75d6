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

type Op =
  | { kind: "complete"; item: Completion; done: () => void }
  | { kind: "fail"; item: Failure; done: () => void }
  | { kind: "release"; id: string; done: () => void };

/** Attempts of one batch write before its jobs are left to the rescuer. */
const WRITE_ATTEMPTS = 8;

export class Completer {
  #queue: Op[] = [];
  #running: Promise<void> | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly workerId: string,
    private readonly maxBatch = 200,
  ) {}

  complete(item: Completion): Promise<void> {
    return this.#push((done) => ({ kind: "complete", item, done }));
  }

  fail(item: Failure): Promise<void> {
    return this.#push((done) => ({ kind: "fail", item, done }));
  }

  /** Back to pending without charging an attempt. */
  release(id: string): Promise<void> {
    return this.#push((done) => ({ kind: "release", id, done }));
  }

  /** Resolves when everything queued so far is written. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  #push(make: (done: () => void) => Op): Promise<void> {
    return new Promise((resolve) => {
      this.#queue.push(make(resolve));
      this.#running ??= this.#loop();
    });
  }

  async #loop(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.maxBatch);
      const completes = batch.filter((o) => o.kind === "complete");
      const fails = batch.filter((o) => o.kind === "fail");
      const releases = batch.filter((o) => o.kind === "release");
      await Promise.all([
        completes.length > 0 &&
        this.#write(() =>
          jobCompleteManyIfRunning(this.sql, this.workerId, completes.map((o) => o.item))
        ),
        fails.length > 0 &&
        this.#write(() => jobFailManyIfRunning(this.sql, this.workerId, fails.map((o) => o.item))),
        releases.length > 0 &&
        this.#write(() =>
          jobReleaseManyIfRunning(this.sql, this.workerId, releases.map((o) => o.id))
        ),
      ]);
      for (const op of batch) op.done();
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
