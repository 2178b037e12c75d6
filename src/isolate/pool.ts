/**
 * Warm, permissioned isolates for job functions. Creating a Worker and loading a handler costs
 * tens of milliseconds, posting a job to a live one well under one (DESIGN.md; figures from
 * tests/isolate_pool_test.ts), so isolates are kept per (function, version, permissions) and
 * reused for the next job of that function, one job at a time each.
 *
 * Runs that start together take turns for the cores: at most `maxActive` runs are "active" at
 * once, and a run stays active only for its first `sliceMs`, after which it counts as long-
 * running and lets the next one in. Every isolate still runs one job at a time; what the limit
 * saves is threads. Each message between host and isolate wakes a thread, and on this 2-core
 * machine 50 Workers passing messages concurrently managed 9,000 round trips/s against 22,000
 * with 4 (and the pool: 3,500 against 6,400 no-op runs/s). A job that waits for a turn waits at
 * most `sliceMs`, and only while `maxActive` other runs started within the last `sliceMs`.
 */
import { Execution } from "./execution.ts";
import { IsolateHost } from "./isolate_host.ts";
import { materializeBundle, type MaterializedBundle } from "./materialize.ts";
import type {
  FunctionBundle,
  JobRun,
  RunHandle,
  RunHooks,
  RunLimits,
  RunOutcome,
} from "./types.ts";

/** How long a bundle's files outlive its last isolate (see #forgetIsolate). */
const FILES_LINGER_MS = 5000;

export interface IsolatePoolOptions {
  /** An idle isolate is stopped after this long (default 60 s). */
  idleTtlMs?: number;
  /** Idle isolates kept per function version (default 2); more are stopped when released. */
  maxIdlePerFunction?: number;
  /** How long a stopping isolate has to answer a ping before it counts as stuck (default 250 ms). */
  stuckPingMs?: number;
  /** Parent of the per-bundle temporary directories (default: the system temp dir). */
  tempDir?: string;
  /** Runs active at once (default: 2 per core); more wait for a turn, at most `sliceMs`. */
  maxActive?: number;
  /** How long a run counts as active (default 10 ms); after that it no longer holds a turn. */
  sliceMs?: number;
}

interface Waiter {
  execution: Execution;
  admit: () => void;
}

interface BundleFiles {
  files: Promise<MaterializedBundle>;
  isolates: number;
}

export class IsolatePool {
  readonly #idleTtlMs: number;
  readonly #maxIdle: number;
  readonly #stuckPingMs: number;
  readonly #tempDir: string | undefined;
  readonly #idle = new Map<string, IsolateHost[]>();
  readonly #idleTimers = new Map<IsolateHost, ReturnType<typeof setTimeout>>();
  readonly #bundles = new Map<string, BundleFiles>();
  readonly #running = new Set<Execution>();
  readonly #maxActive: number;
  readonly #sliceMs: number;
  /** Runs holding a turn, with the time they got it. */
  readonly #active = new Map<Execution, number>();
  #waiting: Waiter[] = [];
  #sliceTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;

  constructor(options: IsolatePoolOptions = {}) {
    this.#idleTtlMs = options.idleTtlMs ?? 60_000;
    this.#maxIdle = options.maxIdlePerFunction ?? 2;
    this.#stuckPingMs = options.stuckPingMs ?? 250;
    this.#tempDir = options.tempDir;
    this.#maxActive = Math.max(1, options.maxActive ?? 2 * (navigator.hardwareConcurrency || 1));
    this.#sliceMs = options.sliceMs ?? 10;
  }

  run(bundle: FunctionBundle, job: JobRun, hooks: RunHooks, limits: RunLimits): RunHandle {
    const execution = new Execution(bundle, job, hooks, limits);
    if (this.#closed) execution.terminate("The isolate pool is shut down");
    this.#running.add(execution);
    const done = this.#drive(execution).finally(() => this.#running.delete(execution));
    return {
      done,
      cancel: () => execution.cancel(),
      terminate: (reason: string) => execution.terminate(reason),
    };
  }

  /** Isolates alive now: idle (warm) and running a job. */
  stats(): { idle: number; running: number } {
    let idle = 0;
    for (const list of this.#idle.values()) idle += list.length;
    return { idle, running: this.#running.size };
  }

  /** Terminates running jobs ("The isolate pool is shut down") and every isolate; safe twice. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    for (const execution of this.#running) execution.terminate("The isolate pool is shut down");
    await Promise.allSettled([...this.#running].map((e) => e.ended));
    const idle = [...this.#idle.values()].flat();
    this.#idle.clear();
    await Promise.all(idle.map((host) => this.#dispose(host, false)));
    await Promise.all([...this.#bundles.values()].map(async (b) => (await b.files).remove()));
    this.#bundles.clear();
  }

  async #drive(execution: Execution): Promise<RunOutcome> {
    let host: IsolateHost | null = null;
    const cannotStart = (e: unknown) =>
      execution.terminate(
        `Cannot start an isolate for "${execution.bundle.name}": ${(e as Error).message}`,
      );
    if (!execution.settled) await this.#turn(execution);
    if (!execution.settled) {
      try {
        host = this.#takeIdle(execution.bundle) ?? await this.#create(execution.bundle);
        // Not awaited: a module that never finishes loading must still time out.
        if (!execution.settled) execution.start(host).catch(cannotStart);
      } catch (e) {
        cannotStart(e);
      }
    }
    const { outcome, disposal } = await execution.ended;
    this.#leave(execution);
    let isolateStuck = false;
    if (host) {
      if (disposal === "reuse" && !this.#closed) this.#release(host);
      else isolateStuck = await this.#dispose(host, disposal === "stop");
    }
    return { ...outcome, isolateStuck } as RunOutcome;
  }

  /** Resolves when `execution` may start (or has ended while waiting). */
  async #turn(execution: Execution): Promise<void> {
    if (this.#active.size < this.#maxActive && this.#waiting.length === 0) {
      this.#active.set(execution, performance.now());
      return;
    }
    let admit!: () => void;
    const admitted = new Promise<void>((resolve) => (admit = resolve));
    this.#waiting.push({ execution, admit });
    this.#armSlice();
    await Promise.race([admitted, execution.ended]);
    this.#waiting = this.#waiting.filter((w) => w.execution !== execution);
  }

  #leave(execution: Execution): void {
    if (this.#active.delete(execution)) this.#admitNext();
  }

  #admitNext(): void {
    while (this.#active.size < this.#maxActive && this.#waiting.length > 0) {
      const next = this.#waiting.shift()!;
      if (next.execution.settled) continue;
      this.#active.set(next.execution, performance.now());
      next.admit();
    }
    this.#armSlice();
  }

  /** While runs wait, ends the turn of the oldest active run when its slice is over. */
  #armSlice(): void {
    if (this.#sliceTimer !== null || this.#waiting.length === 0 || this.#active.size === 0) {
      return;
    }
    const oldest = Math.min(...this.#active.values());
    const delay = Math.max(0, oldest + this.#sliceMs - performance.now());
    this.#sliceTimer = setTimeout(() => {
      this.#sliceTimer = null;
      const now = performance.now();
      for (const [execution, since] of this.#active) {
        if (now - since >= this.#sliceMs) this.#active.delete(execution);
      }
      this.#admitNext();
    }, delay);
  }

  #takeIdle(bundle: FunctionBundle): IsolateHost | null {
    const host = this.#idle.get(isolateKey(bundle))?.pop() ?? null;
    if (host) {
      clearTimeout(this.#idleTimers.get(host));
      this.#idleTimers.delete(host);
    }
    return host;
  }

  async #create(bundle: FunctionBundle): Promise<IsolateHost> {
    const versionKey = `${bundle.id}@${bundle.version}`;
    let files = this.#bundles.get(versionKey);
    if (!files) {
      files = { files: materializeBundle(bundle, this.#tempDir), isolates: 0 };
      this.#bundles.set(versionKey, files);
    }
    files.isolates++;
    try {
      const { mainUrl, rewriteTrace } = await files.files;
      const name = `fluxbase:${bundle.namespace}/${bundle.name}@${bundle.version}`;
      return new IsolateHost(isolateKey(bundle), mainUrl, name, bundle.permissions, rewriteTrace);
    } catch (e) {
      this.#forgetIsolate(versionKey);
      throw e;
    }
  }

  #release(host: IsolateHost) {
    const list = this.#idle.get(host.key) ?? [];
    if (list.length >= this.#maxIdle) {
      void this.#dispose(host, false);
      return;
    }
    list.push(host);
    this.#idle.set(host.key, list);
    const timer = setTimeout(() => {
      const current = this.#idle.get(host.key);
      const index = current?.indexOf(host) ?? -1;
      if (index >= 0) current!.splice(index, 1);
      this.#idleTimers.delete(host);
      void this.#dispose(host, false);
    }, this.#idleTtlMs);
    // Idle isolates must not keep the process alive.
    Deno.unrefTimer(timer);
    this.#idleTimers.set(host, timer);
  }

  /** Stops an isolate; returns true when it did not answer (it may still burn a core). */
  async #dispose(host: IsolateHost, checkStuck: boolean): Promise<boolean> {
    const { stuck } = await host.stop(checkStuck ? this.#stuckPingMs : null);
    this.#forgetIsolate(host.key.split("\0", 1)[0]);
    return stuck;
  }

  /**
   * Drops an isolate's claim on its bundle's files. The files outlive the last isolate by a
   * few seconds: a Worker terminated while its module graph was still loading keeps reading
   * them ("Uncaught (in worker) Module not found" otherwise), and a job of the same version
   * arriving meanwhile reuses them. shutdown() removes whatever is left at once.
   */
  #forgetIsolate(versionKey: string) {
    const files = this.#bundles.get(versionKey);
    if (!files) return;
    files.isolates--;
    if (files.isolates > 0) return;
    const timer = setTimeout(() => {
      if (this.#bundles.get(versionKey) !== files || files.isolates > 0) return;
      this.#bundles.delete(versionKey);
      void files.files.then((f) => f.remove()).catch(() => {});
    }, FILES_LINGER_MS);
    Deno.unrefTimer(timer);
  }
}

/** Isolates are shared by jobs of the same function version with the same permissions. */
function isolateKey(bundle: FunctionBundle): string {
  const p = bundle.permissions;
  const grants = ["net", "env", "read", "write", "run"].map((k) =>
    JSON.stringify(p[k as keyof typeof p] ?? false)
  );
  return `${bundle.id}@${bundle.version}\0${grants.join(",")}`;
}
