/**
 * The engine of one worker process: registers in `jobs.workers`, claims jobs into free slots,
 * runs each in an isolate, records outcomes in batches, heartbeats, and reacts to cancel and
 * terminate notifications. `runWorker` (main.ts) wires it to a process; tests drive it directly.
 *
 * Claiming is self-clocking: one claim in flight at a time, woken by NOTIFY fluxbase_jobs (a
 * job was submitted or became pending), by a freed slot while the last claim came back full,
 * or by the poll timer. Jobs that finish while a claim is in flight are claimed for together.
 *
 * Local queue (graphile-worker's localQueue; `jobs.local_queue_size`, default 0): a claim
 * takes up to that many jobs beyond the free slots, so a freed slot starts its next job at
 * once and claims come in batches instead of one per finished job (measured, 50 slots: claims
 * of 1-3 jobs at ~6 ms each capped the worker near 1,000 jobs/s). Off by default, because
 * queued jobs wait for this worker even when another is idle. Queued jobs are `running` under
 * this worker in the database, so they count against the namespace limit; a cancelled or lost
 * one is dropped before it starts, and a graceful stop returns the never-started ones to
 * pending without charging an attempt. A worker that dies is charged an attempt for each job
 * it held, queued ones included, as graphile-worker charges the jobs it locked: recording each
 * start durably before running the job would cost an extra write per job (measured: the
 * bench fell from ~2,400 to ~700 jobs/s).
 */
import type { JobsConfig } from "../config.ts";
import type { Sql } from "../db/pool.ts";
import { coerceError } from "../errors.ts";
import type {
  FunctionBundle,
  JobRun,
  LogLine,
  PlatformRequest,
  PlatformResponse,
  ProgressUpdate,
  RunHandle,
  RunHooks,
  RunLimits,
  RunOutcome,
} from "../isolate/types.ts";
import { Completer } from "../queue/completer.ts";
import { type ClaimedJob, jobClaimAvailable, jobListLostOfWorker } from "../queue/job_queries.ts";
import { LogWriter } from "../queue/log_writer.ts";
import { ProgressWriter } from "../queue/progress_writer.ts";
import { retryDelayMs } from "../queue/retry_policy.ts";
import { workerHeartbeat, workerMarkStopped, workerRegister } from "../queue/worker_queries.ts";
import { BundleCache } from "./bundle_cache.ts";

/**
 * What runs a job: `IsolatePool` from src/isolate/pool.ts. It calls the hooks' `onEnd` with the
 * outcome when the run has ended.
 */
export interface JobExecutor {
  run(bundle: FunctionBundle, job: JobRun, hooks: RunHooks, limits: RunLimits): RunHandle;
}

export type PlatformHandler = (job: ClaimedJob, req: PlatformRequest) => Promise<PlatformResponse>;

export interface JobWorkerOptions {
  sql: Sql;
  /**
   * Where claims run (default: `sql`). The worker process gives them a pool of their own whose
   * commits do not wait for the disk (src/worker/main.ts says why that is safe).
   */
  claimSql?: Sql;
  config: JobsConfig;
  executor: JobExecutor;
  /** Row id in jobs.workers; the supervisor passes one so it can rescue a crashed child. */
  id?: string;
  name?: string;
  platform?: PlatformHandler;
  /** What `Deno.env` shows a job (isolate/env.ts buildJobEnv). */
  jobEnv?: (job: ClaimedJob) => Record<string, string>;
  /** Jobs claimed beyond the free slots (default: 4 per slot). */
  prefetch?: number;
  /**
   * Called once when this process must be replaced: an isolate did not stop, or the rescuer
   * declared this worker dead. The owner stops the worker and exits the process.
   */
  onRecycle?: (reason: string) => void;
}

/** Why the worker stopped a job itself; decides how its outcome is recorded. */
type StopReason = "cancel" | "terminate" | "shutdown" | "lost";

/** What a slot's job reports, and where: the worker's writers, shared by its slots. */
interface SlotOwner {
  progress: ProgressWriter;
  logs: LogWriter;
  platform: PlatformHandler | undefined;
  ended(slot: Slot, outcome: RunOutcome): void;
}

/**
 * A job in a slot. It is also the run's hooks: what the isolate reports goes to the worker's
 * writers, and the outcome to the worker (one object per job).
 */
class Slot implements RunHooks {
  handle: RunHandle | null = null;
  stop: StopReason | null = null;
  /** The slot is free again: anything the run still reports is dropped. */
  freed = false;

  constructor(readonly job: ClaimedJob, private readonly owner: SlotOwner) {}

  onProgress(p: ProgressUpdate): void {
    if (!this.freed) this.owner.progress.report(this.job.id, p);
  }

  onLog(line: LogLine): void {
    if (this.freed) return;
    this.owner.logs.write(this.job.id, this.job.log_lines, line.level, line.message, line.at);
  }

  onPlatformRequest(req: PlatformRequest): Promise<PlatformResponse> {
    if (this.owner.platform) return this.owner.platform(this.job, req);
    return Promise.resolve({
      status: 503,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        error: "The platform API is not available to this worker",
        code: "platform_unavailable",
      }),
    });
  }

  onEnd(outcome: RunOutcome): void {
    this.owner.ended(this, outcome);
  }
}

export class JobWorker {
  readonly id: string;
  readonly name: string;
  #state: "new" | "running" | "draining" | "stopped" = "new";
  #slots = new Map<string, Slot>();
  /** Claimed (running in the database) but not started yet, in claim order. */
  #local: ClaimedJob[] = [];
  readonly #prefetch: number;
  #bundles: BundleCache;
  #completer: Completer;
  #progress: ProgressWriter;
  #logs: LogWriter;
  #unlisten: (() => Promise<void>)[] = [];
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #loop: Promise<void> | null = null;
  /** The last claim came back full, so more jobs may be waiting. */
  #more = true;
  /** Wake-ups for submitted jobs so far (a claim in flight may not have seen the last one). */
  #submitted = 0;
  #wakePending = false;
  #wakeFn: (() => void) | null = null;
  #recycled: string | null = null;
  #stopping: Promise<void> | null = null;
  /** Outcomes waiting for their log lines to be written (the slot is already free). */
  #writes = new Set<Promise<void>>();
  #filling = false;
  readonly #slotOwner: SlotOwner;
  /** The limits of the last job started, reused by the next one when its limits are the same. */
  #limits: { timeout: number | null; progress: number | null; limits: RunLimits } | null = null;
  /** Called when a slot frees, while stop() waits for them. */
  #slotFreed: (() => void) | null = null;

  constructor(private readonly opts: JobWorkerOptions) {
    this.id = opts.id ?? crypto.randomUUID();
    this.name = opts.name ?? `worker-${this.id.slice(0, 8)}`;
    this.#prefetch = Math.max(0, opts.prefetch ?? opts.config.localQueueSize);
    this.#bundles = new BundleCache(opts.sql);
    // Jobs no longer count as running once their batch is written: under a namespace limit,
    // capacity that the last (short) claim could not use is free now. Claim at once rather
    // than at the next poll (measured: with the default limit of 20 and a long queue, waiting
    // for the poll held a worker at ~20 jobs/s).
    this.#completer = new Completer(opts.sql, this.id, () => {
      this.#more = true;
      if (this.#claimDue()) this.#wake();
    });
    this.#progress = new ProgressWriter(opts.sql, this.id);
    this.#logs = new LogWriter(opts.sql, this.id, opts.config.maxLogLinesPerJob);
    this.#slotOwner = {
      progress: this.#progress,
      logs: this.#logs,
      platform: opts.platform,
      ended: (slot, outcome) => this.#ended(slot, outcome),
    };
  }

  get runningCount(): number {
    return this.#slots.size;
  }

  /** Why the worker asked to be recycled, or null. */
  get recycleReason(): string | null {
    return this.#recycled;
  }

  async start(): Promise<void> {
    if (this.#state !== "new") return;
    this.#state = "running";
    const { sql, config } = this.opts;
    await workerRegister(sql, {
      id: this.id,
      name: this.name,
      hostname: hostname(),
      pid: Deno.pid,
      maxConcurrentJobs: config.maxConcurrentPerWorker,
    });
    const listen = async (channel: string, fn: (payload: string) => void) => {
      const { unlisten } = await sql.listen(channel, fn);
      this.#unlisten.push(unlisten);
    };
    await listen("fluxbase_jobs", () => {
      this.#more = true;
      this.#submitted++;
      this.#wake();
    });
    await listen("fluxbase_cancel", (payload) => this.#onCancel(payload));
    await listen("fluxbase_terminate", (payload) => this.#onTerminate(payload));
    this.#heartbeat = setInterval(() => void this.#beat(), config.workerHeartbeatIntervalMs);
    this.#loop = this.#claimLoop();
  }

  /**
   * Graceful stop: no more claims, running jobs get `graceMs` to finish, then they are
   * terminated and returned to pending without charging an attempt. Safe twice.
   */
  stop(graceMs = this.opts.config.shutdownGraceMs): Promise<void> {
    if (this.#state === "new") {
      this.#state = "stopped";
      return Promise.resolve();
    }
    this.#stopping ??= this.#stop(graceMs);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#state = "draining";
    this.#wake();
    await this.#loop;
    // Claimed but never started: back to pending, no attempt charged.
    for (const job of this.#local.splice(0)) this.#completer.release(job.id);
    await this.#beat();
    await this.#waitForSlots(graceMs);
    for (const slot of this.#slots.values()) {
      slot.stop = "shutdown";
      slot.handle?.terminate("The worker is shutting down");
    }
    // Terminated isolates report at once; one that does not is stuck and released anyway.
    await this.#waitForSlots(5000);
    for (const slot of this.#slots.values()) this.#completer.release(slot.job.id);
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    await Promise.all(this.#unlisten.map((u) => u().catch(() => {})));
    this.#unlisten = [];
    await Promise.all(this.#writes);
    await this.#progress.stop();
    await this.#logs.stop();
    await this.#completer.drain();
    await workerMarkStopped(this.opts.sql, this.id).catch(() => {});
    this.#state = "stopped";
  }

  async #waitForSlots(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.#slots.size > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(100, deadline - Date.now()));
        this.#slotFreed = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#slotFreed = null;
    }
  }

  /** How many jobs a claim would take now (slots plus local queue minus what is held). */
  #wanted(): number {
    return this.opts.config.maxConcurrentPerWorker + this.#prefetch - this.#slots.size -
      this.#local.length;
  }

  /**
   * Whether a claim is worth its round trip: a free slot with nothing to start, or room for
   * at least half a local queue (so claims under load come in batches, not one per job).
   */
  #claimDue(): boolean {
    const want = this.#wanted();
    if (want <= 0) return false;
    const idleSlot = this.#local.length === 0 &&
      this.#slots.size < this.opts.config.maxConcurrentPerWorker;
    return idleSlot || want >= Math.max(1, Math.ceil(this.#prefetch / 2));
  }

  async #claimLoop(): Promise<void> {
    const { config } = this.opts;
    const claimSql = this.opts.claimSql ?? this.opts.sql;
    while (this.#state === "running" && this.#recycled === null) {
      if (this.#more && this.#claimDue()) {
        const want = this.#wanted();
        let jobs: ClaimedJob[] = [];
        const submitted = this.#submitted;
        try {
          jobs = await jobClaimAvailable(claimSql, this.id, want, config.maxConcurrentPerNamespace);
          // A job submitted while the claim ran may be newer than the claim's snapshot: without
          // another claim it would wait for the next poll (seen: a 1 s start latency).
          this.#more = jobs.length === want || this.#submitted !== submitted;
        } catch (e) {
          console.error(`Worker ${this.name}: claim failed: ${coerceError(e).message}`);
          this.#more = false;
        }
        this.#local.push(...jobs);
        this.#fill();
        if (this.#more && this.#claimDue()) continue;
      }
      await this.#sleep(config.pollIntervalMs);
    }
  }

  /**
   * Starts local jobs in free slots (none once the worker stops claiming). A job that cannot
   * start frees its slot at once, inside this loop, which then fills it again.
   */
  #fill(): void {
    if (this.#filling) return;
    this.#filling = true;
    const max = this.opts.config.maxConcurrentPerWorker;
    try {
      while (this.#slots.size < max && this.#local.length > 0 && this.#state === "running") {
        this.#startJob(this.#local.shift()!);
      }
    } finally {
      this.#filling = false;
    }
  }

  /** Drops a job from the local queue; true when it was there. */
  #dropLocal(jobId: string): boolean {
    const index = this.#local.findIndex((j) => j.id === jobId);
    if (index < 0) return false;
    this.#local.splice(index, 1);
    return true;
  }

  #sleep(ms: number): Promise<void> {
    if (this.#wakePending) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wakeFn = null;
        this.#more = true;
        resolve();
      }, ms);
      this.#wakeFn = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #wake(): void {
    const fn = this.#wakeFn;
    this.#wakeFn = null;
    if (fn) fn();
    else this.#wakePending = true;
  }

  /**
   * Runs a job in a slot. A job whose function is loaded already (all but the first of each
   * version) starts at once and costs one promise, its run's `done`: no async function per job.
   */
  #startJob(job: ClaimedJob): void {
    const slot = new Slot(job, this.#slotOwner);
    this.#slots.set(job.id, slot);
    const bundle = job.function_id
      ? this.#bundles.loaded(job.function_id, job.function_version)
      : null;
    if (bundle) this.#run(slot, bundle);
    else void this.#loadAndRun(slot);
  }

  async #loadAndRun(slot: Slot): Promise<void> {
    const { job } = slot;
    let bundle: FunctionBundle | null;
    try {
      bundle = job.function_id
        ? await this.#bundles.get(job.function_id, job.function_version)
        : null;
    } catch (e) {
      this.#cannotRun(slot, e);
      return;
    }
    if (!bundle) {
      this.#freeSlot(slot, this.#fail(job, `Function "${job.job_name}" no longer exists`, false));
    } else if (slot.stop) {
      // Stopped while its function loaded: nothing ran, so nothing is charged.
      if (slot.stop === "shutdown") this.#completer.release(job.id);
      this.#freeSlot(slot, this.#logs.end(job.id));
    } else {
      this.#run(slot, bundle);
    }
  }

  #run(slot: Slot, bundle: FunctionBundle): void {
    const { job } = slot;
    try {
      slot.handle = this.opts.executor.run(bundle, this.#jobRun(job), slot, this.#limitsOf(job));
    } catch (e) {
      this.#cannotRun(slot, e);
    }
  }

  #limitsOf(job: ClaimedJob): RunLimits {
    const timeout = job.timeout_seconds;
    const progress = job.progress_timeout_seconds;
    const last = this.#limits;
    if (last && last.timeout === timeout && last.progress === progress) return last.limits;
    const { config } = this.opts;
    const limits = {
      timeoutMs: (timeout ?? config.defaultTimeoutSeconds) * 1000,
      progressTimeoutMs: progress ? progress * 1000 : config.defaultProgressTimeoutMs,
      cancelGraceMs: config.cancelGraceMs,
    };
    this.#limits = { timeout, progress, limits };
    return limits;
  }

  #cannotRun(slot: Slot, e: unknown): void {
    const error = `The worker could not run the job: ${coerceError(e).message}`;
    this.#freeSlot(slot, this.#fail(slot.job, error, true));
  }

  /**
   * The slot frees as soon as the outcome is known; the write joins the next batch. Holding
   * the slot until the write landed put a completion round trip into every job's cycle
   * (measured: 2,500 instead of 10,000+ jobs/s at 50 slots).
   */
  #ended(slot: Slot, outcome: RunOutcome): void {
    let pending: Promise<void> | void;
    try {
      pending = this.#record(slot, outcome);
    } catch (e) {
      pending = Promise.reject(e);
    }
    this.#freeSlot(slot, pending);
  }

  /**
   * Frees the slot for the next job. `pending`: the outcome waits for the job's log lines to be
   * written first (most outcomes are queued at once).
   */
  #freeSlot(slot: Slot, pending: Promise<void> | void): void {
    const { job } = slot;
    slot.freed = true;
    this.#slots.delete(job.id);
    if (pending) {
      const write = pending.catch((e) =>
        console.error(
          `Worker ${this.name}: recording job ${job.id} failed: ${coerceError(e).message}`,
        )
      );
      this.#writes.add(write);
      void write.finally(() => this.#writes.delete(write));
    }
    this.#slotFreed?.();
    this.#fill();
    if (this.#more && this.#claimDue()) this.#wake();
  }

  /** Queues the outcome's write; returns a promise only while the job's logs are flushed first. */
  #record(slot: Slot, outcome: RunOutcome): Promise<void> | void {
    const { job } = slot;
    let stuckNote = "";
    if (outcome.isolateStuck) {
      stuckNote = "; its isolate did not stop, so the worker process is being replaced";
      this.#recycle(`the isolate of job ${job.id} (${job.job_name}) did not stop`);
    }
    switch (outcome.kind) {
      case "completed": {
        const completion = {
          id: job.id,
          result: outcome.result,
          progress: this.#progress.take(job.id),
          logs: null,
        };
        // after() without its closure: this is the path of nearly every job.
        const flushing = this.#logs.end(job.id);
        if (flushing) return flushing.then(() => this.#completer.complete(completion));
        this.#completer.complete(completion);
        return;
      }
      case "failed":
        if (outcome.stack) this.#logs.write(job.id, job.log_lines, "error", outcome.stack);
        return this.#fail(job, outcome.error + stuckNote, true);
      case "timed_out":
      case "progress_timed_out":
        return this.#fail(job, outcome.error + stuckNote, true);
      case "cancelled":
      case "terminated":
        if (slot.stop === "shutdown") {
          this.#progress.take(job.id);
          return after(this.#logs.end(job.id), () => this.#completer.release(job.id));
        } else if (slot.stop === null) {
          // Nobody here asked for it: record it as a failed attempt so it is not lost.
          const error = outcome.kind === "terminated" ? outcome.error : "The job was cancelled";
          return this.#fail(job, error + stuckNote, true);
        }
        // Cancelled or terminated by a user or admin (status is already 'cancelled'), or
        // no longer ours: the guarded writes would change nothing; keep the logs.
        this.#progress.take(job.id);
        return this.#logs.end(job.id);
    }
  }

  #fail(job: ClaimedJob, error: string, retryable: boolean): Promise<void> | void {
    const failure = {
      id: job.id,
      error,
      delayMs: retryDelayMs(this.opts.config, job.retry_count),
      retryable,
      progress: this.#progress.take(job.id),
      logs: null,
    };
    return after(this.#logs.end(job.id), () => this.#completer.fail(failure));
  }

  #jobRun(job: ClaimedJob): JobRun {
    return {
      jobId: job.id,
      jobName: job.job_name,
      namespace: job.namespace,
      retryCount: job.retry_count,
      payload: job.payload,
      user: job.created_by
        ? { id: job.created_by, email: job.user_email, role: job.user_role ?? "authenticated" }
        : null,
      env: this.opts.jobEnv?.(job) ?? {},
    };
  }

  #onCancel(payload: string): void {
    const [jobId, workerId] = payload.split(":");
    if (workerId && workerId !== this.id) return;
    // Not started yet: its row is cancelled already, so it simply never runs.
    if (this.#dropLocal(jobId)) return;
    const slot = this.#slots.get(jobId);
    if (!slot || slot.stop) return;
    slot.stop = "cancel";
    slot.handle?.cancel();
  }

  #onTerminate(payload: string): void {
    if (this.#dropLocal(payload.trim())) return;
    const slot = this.#slots.get(payload.trim());
    if (!slot || slot.stop === "terminate") return;
    slot.stop = "terminate";
    slot.handle?.terminate("Terminated by an administrator");
  }

  async #beat(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "new") return;
    const { sql } = this.opts;
    try {
      const status = this.#state === "running" && !this.#recycled ? "active" : "draining";
      const alive = await workerHeartbeat(sql, this.id, this.#slots.size, status);
      if (!alive) {
        // Declared dead (we were silent too long): our jobs are someone else's now.
        this.#local = [];
        for (const slot of this.#slots.values()) {
          slot.stop ??= "lost";
          slot.handle?.terminate("The worker was declared dead");
        }
        this.#recycle("the rescuer declared this worker dead");
        return;
      }
      // Safety net for a cancel notification missed while the LISTEN connection was down.
      const lost = await jobListLostOfWorker(sql, this.id, [
        ...this.#slots.keys(),
        ...this.#local.map((j) => j.id),
      ]);
      for (const id of lost) {
        if (this.#dropLocal(id)) continue;
        const slot = this.#slots.get(id);
        if (!slot || slot.stop) continue;
        slot.stop = "lost";
        slot.handle?.cancel();
      }
    } catch (e) {
      console.error(`Worker ${this.name}: heartbeat failed: ${coerceError(e).message}`);
    }
  }

  #recycle(reason: string): void {
    if (this.#recycled !== null) return;
    this.#recycled = reason;
    this.#wake(); // the claim loop sees the reason and ends
    console.error(`Worker ${this.name}: recycling the process: ${reason}`);
    this.opts.onRecycle?.(reason);
  }
}

/** Runs `then` after `first` when that is a promise, at once otherwise (no promise made). */
function after(first: Promise<void> | void, then: () => void): Promise<void> | void {
  if (first) return first.then(then);
  then();
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}
