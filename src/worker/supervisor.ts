/**
 * Runs `embedded_worker_count` worker processes of this program and keeps them running.
 *
 * Each child gets a V8 heap cap (`--max-old-space-size`), because a job that exhausts its
 * heap aborts its whole process (DESIGN.md): the cap makes that one worker process, never the
 * API. When a child exits without stopping cleanly, the supervisor records the attempts of
 * the jobs it held as failed ("worker process crashed (out of memory?)"), so they retry at
 * once instead of waiting for the heartbeat timeout, and starts a replacement: at once after
 * a deliberate recycle, with exponential backoff after crashes in a row.
 */
import { resolve } from "node:path";
import type { Config } from "../config.ts";
import { createPool, type Sql } from "../db/pool.ts";
import { coerceError } from "../errors.ts";
import { workerRescueById } from "../queue/worker_queries.ts";
import { RECYCLE_EXIT_CODE, WORKER_BOOT_ENV, type WorkerBoot } from "./boot.ts";

export const WORKER_CRASHED = "worker process crashed (out of memory?)";

const ROOT = new URL("../../", import.meta.url);
/** A child that ran this long before crashing resets the backoff. */
const HEALTHY_AFTER_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;

export interface SupervisorOptions {
  config: Config;
  databaseUrl: string;
  jwtSecret: string;
  /**
   * Program and arguments of a worker process; default src/worker/process.ts, which takes
   * everything from the boot record (same as `main.ts worker`, without loading config).
   */
  entry?: string;
  args?: string[];
  /** Extra environment of the children. */
  env?: Record<string, string>;
  /** Child output; default: inherited from this process. */
  stdio?: "inherit" | "null";
  /**
   * Default true. False leaves dead children's jobs to the heartbeat rescuer, as after a
   * crash of the whole server (the crash test uses it to take that path).
   */
  rescueOnExit?: boolean;
  /** Called after a child exits (tests, logs). */
  onExit?: (e: { workerId: string; pid: number; code: number; signal: string | null }) => void;
}

interface Child {
  slot: number;
  workerId: string;
  process: Deno.ChildProcess;
  startedAt: number;
  exited: Promise<void>;
}

export class WorkerSupervisor {
  #children = new Map<number, Child>();
  #crashes = new Map<number, number>();
  #restarts = new Set<ReturnType<typeof setTimeout>>();
  #sql: Sql | null = null;
  #state: "new" | "running" | "stopping" | "stopped" = "new";
  #stopping: Promise<void> | null = null;

  constructor(private readonly opts: SupervisorOptions) {}

  /** Current children (pid and worker id), for tests and the admin view. */
  get workers(): { pid: number; workerId: string }[] {
    return [...this.#children.values()].map((c) => ({ pid: c.process.pid, workerId: c.workerId }));
  }

  async start(): Promise<void> {
    if (this.#state !== "new") return;
    this.#state = "running";
    const jobs = this.opts.config.jobs;
    if (!jobs.enabled || jobs.workerMode === "disabled") return;
    this.#sql = createPool(this.opts.databaseUrl, {
      max: 2,
      applicationName: "fluxbase-supervisor",
    });
    for (let slot = 0; slot < jobs.embeddedWorkerCount; slot++) this.#spawn(slot);
    await Promise.resolve();
  }

  /** SIGTERM to every child (they drain within shutdown_grace), SIGKILL after. Safe twice. */
  stop(): Promise<void> {
    if (this.#state === "new") this.#state = "stopped";
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#state = "stopping";
    for (const t of this.#restarts) clearTimeout(t);
    this.#restarts.clear();
    const children = [...this.#children.values()];
    for (const c of children) signal(c.process, "SIGTERM");
    const deadline = this.opts.config.jobs.shutdownGraceMs + 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, deadline)));
    await Promise.race([Promise.all(children.map((c) => c.exited)), timeout]);
    clearTimeout(timer);
    for (const c of this.#children.values()) signal(c.process, "SIGKILL");
    await Promise.all(children.map((c) => c.exited));
    await this.#sql?.end({ timeout: 2 }).catch(() => {});
    this.#sql = null;
    this.#state = "stopped";
  }

  /** Kills one child as a crash would (tests of crash recovery). */
  kill(pid: number, sig: Deno.Signal = "SIGKILL"): void {
    for (const c of this.#children.values()) if (c.process.pid === pid) signal(c.process, sig);
  }

  #spawn(slot: number): void {
    const { config, databaseUrl, jwtSecret } = this.opts;
    const workerId = crypto.randomUUID();
    const boot: WorkerBoot = {
      id: workerId,
      name: `worker-${slot + 1}-${workerId.slice(0, 8)}`,
      config,
      databaseUrl,
      jwtSecret,
    };
    const entry = this.opts.entry ?? new URL("process.ts", import.meta.url).pathname;
    const command = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...workerFlags(config.jobs.workerMemoryMb, config.dataDir),
        entry,
        ...(this.opts.args ?? []),
      ],
      env: {
        ...this.opts.env,
        [WORKER_BOOT_ENV]: JSON.stringify(boot),
        // For an entry that loads its configuration the usual way (main.ts worker): the same
        // database and secret as this process, never an embedded PostgreSQL of its own.
        DATABASE_URL: databaseUrl,
        FLUXBASE_AUTH_JWT_SECRET: jwtSecret,
      },
      stdin: "null",
      stdout: this.opts.stdio ?? "inherit",
      stderr: this.opts.stdio ?? "inherit",
    });
    const process = command.spawn();
    const child: Child = {
      slot,
      workerId,
      process,
      startedAt: Date.now(),
      exited: Promise.resolve(),
    };
    child.exited = process.status.then((status) => this.#onExit(child, status));
    this.#children.set(slot, child);
  }

  async #onExit(child: Child, status: Deno.CommandStatus): Promise<void> {
    this.#children.delete(child.slot);
    this.opts.onExit?.({
      workerId: child.workerId,
      pid: child.process.pid,
      code: status.code,
      signal: status.signal,
    });
    // Whatever the exit, jobs still marked running under this worker will never finish there.
    // After a clean exit there are none and this changes nothing.
    if (this.#sql && this.opts.rescueOnExit !== false) {
      const reason = status.code === 0 || status.code === RECYCLE_EXIT_CODE
        ? "worker process exited while running the job"
        : WORKER_CRASHED;
      await workerRescueById(this.#sql, child.workerId, reason, this.opts.config.jobs).catch(
        (e) =>
          console.error(`Rescue of worker ${child.workerId} failed: ${coerceError(e).message}`),
      );
    }
    if (this.#state !== "running") return;
    let delay = 0;
    if (status.code !== RECYCLE_EXIT_CODE) {
      const healthy = Date.now() - child.startedAt > HEALTHY_AFTER_MS;
      const crashes = healthy ? 1 : (this.#crashes.get(child.slot) ?? 0) + 1;
      this.#crashes.set(child.slot, crashes);
      delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** (crashes - 1));
      console.error(
        `Worker process ${child.process.pid} exited (code ${status.code}` +
          `${status.signal ? `, signal ${status.signal}` : ""}); restarting in ${delay} ms`,
      );
    }
    const timer = setTimeout(() => {
      this.#restarts.delete(timer);
      if (this.#state === "running") this.#spawn(child.slot);
    }, delay);
    this.#restarts.add(timer);
  }
}

/**
 * How a worker process's heaps grow. V8 flags are process-wide, so each of them also shapes every
 * job isolate's heap.
 *
 * - `--semi-space-growth-factor=8`: the young generation grows 8-fold instead of 2-fold when many
 *   objects survive a scavenge. While the main heap's was small, a claim's rows and the jobs waiting
 *   for their completion batch outlived its scavenges and were promoted, to be marked and compacted
 *   later: the worker ran about 30,000 jobs before its CPU per job fell from 34-37 to 14-24 us, and
 *   within 20,000 with this flag (bench/jobs.ts, two sets of 8 paired runs, third round: 18.7k ->
 *   21.2k and 17.3k -> 22.4k jobs/s). An isolate's heap, whose objects die young, grows no faster.
 * - `--max-semi-space-size=8` and `--initial-old-space-size=32` (MB): otherwise V8 lets each
 *   semi-space grow to 32 MB here and sets the old generation's first limits low. A heap that
 *   still grows pays a page fault for every fresh 4 KB page it touches, about 7 us each on this
 *   VM: 1.0 / 0.7 / 0.07 faults per job in rounds 1 / 2 / 3 of the bench, and in the first round
 *   a fifth of the main thread's time (perf), as the young generation grew towards 64 MB and the
 *   old one past its early limits. With a young generation capped at 16 MB, full size within the
 *   warm-up, and no major collection before the old generation holds 32 MB, the bench ran
 *   18.2k / 24.2k / 25.9k jobs/s against 15.2k / 19.1k / 25.5k (medians of 5 paired runs; another
 *   6 with 64 MB of old generation: 19.0k / 24.6k / 26.1k against 16.9k / 20.8k / 27.3k), worker
 *   CPU per job 38 / 28 / 24 against 49 / 42 / 25 us. Either flag alone helped one round and not
 *   the other. An isolate's young generation now tops out 48 MB lower, and its first major
 *   collection comes later. `--min-semi-space-size`, which would size every isolate's young
 *   generation up front, slowed the isolates in the first round (21 instead of 8 us per job).
 *
 * deno.json's `worker` task, for a standalone worker, passes the same flags.
 */
/** The V8 flags above, for a worker whose heaps may each hold `memoryMb`. */
export function heapFlags(memoryMb: number): string {
  const initialOld = Math.min(32, Math.floor(memoryMb / 2));
  return `--semi-space-growth-factor=8,--max-semi-space-size=8,--initial-old-space-size=${initialOld}`;
}

/**
 * Flags of a worker process: its heap cap and growth (above), no prompts (a worker with a
 * terminal could otherwise be granted permissions interactively), and only the permissions a job
 * can be granted (an isolate can narrow its parent's permissions, never widen them) plus sys for
 * the hostname. No ffi. The data directory (generated JWT secret, database password, embedded
 * database files) is denied outright: an isolate can only narrow the process's permissions, so the
 * deny holds inside a job granted `allow-read`/`allow-write` too (the worker gets all it needs
 * from its boot record).
 */
export function workerFlags(memoryMb: number, dataDir: string): string[] {
  const denied = resolve(dataDir);
  return [
    `--v8-flags=--max-old-space-size=${memoryMb},${heapFlags(memoryMb)}`,
    `--deny-read=${denied}`,
    `--deny-write=${denied}`,
    "--no-prompt",
    `--config=${new URL("deno.json", ROOT).pathname}`,
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-sys",
    "--allow-import",
  ];
}

function signal(p: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    p.kill(sig);
  } catch {
    // Already exited.
  }
}
