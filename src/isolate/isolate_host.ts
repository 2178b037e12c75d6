/**
 * The host side of one isolate: creates the permissioned Worker, queues runs on it in batches,
 * routes its messages and finished runs to their executions, answers "is it alive?" and stops
 * it. Runs queued here run one at a time, in order (entry.ts).
 */
import { ControlBlock, SLOTS, SlotState } from "./control.ts";
import type { Execution } from "./execution.ts";
import type { ErrorInfo, HostMessage, IsolateMessage, QueuedRun } from "./protocol.ts";
import type { Permissions } from "./types.ts";

/** Where the isolate's main module is (materialize.ts), and how to map its paths back. */
export interface IsolateFiles {
  mainUrl: URL;
  rewriteTrace(text: string): string;
}

/**
 * Worker permissions from a bundle's grants. Every kind is spelled out: a Worker created without
 * a `permissions` option inherits all of its parent's (DESIGN.md), and one with a partial object
 * inherits the kinds left out.
 */
export function workerPermissions(p: Permissions): Deno.PermissionOptionsObject {
  return {
    net: p.net ?? false,
    env: p.env ?? false,
    read: p.read ?? false,
    write: p.write ?? false,
    run: p.run ?? false,
    ffi: false,
    sys: false,
    import: false,
  };
}

let nextPingId = 1;

export class IsolateHost {
  readonly key: string;
  readonly control = new ControlBlock();
  /** Resolves with null once the handler is loaded, or with the reason it could not be. */
  readonly ready: Promise<ErrorInfo | null>;
  /** True once the isolate ended by itself (Deno.exit, crash): there is nothing to stop. */
  exited = false;
  /** True once its module graph has loaded; before that no JavaScript of the job can be running. */
  booted = false;
  /** Set when it is being stopped: it takes no more runs. */
  stopping = false;
  /** Called when the isolate dies between runs (no run to blame); the pool moves its queue. */
  onGone: ((error: ErrorInfo) => void) | null = null;
  #worker: Worker | null = null;
  /** Messages posted before the Worker exists (its files are still being written). */
  #early: HostMessage[] = [];
  #rewriteTrace: (text: string) => string = (text) => text;
  #loaded = false;
  #free = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);
  /** Runs queued or running here, in the order they were queued. */
  #runs = new Map<number, Execution>();
  #unposted: QueuedRun[] = [];
  #pongs = new Map<number, () => void>();
  #resolveReady!: (value: ErrorInfo | null) => void;
  #stopped = false;
  #stopping: Promise<{ stuck: boolean }> | null = null;

  constructor(key: string, files: Promise<IsolateFiles>, name: string, permissions: Permissions) {
    this.key = key;
    this.ready = new Promise((resolve) => (this.#resolveReady = resolve));
    this.post({ type: "init", control: this.control.buffer });
    files.then((f) => this.#start(f, name, permissions), (e) => this.#cannotStart(e));
    void this.ready.then((error) => {
      if (error) {
        for (const execution of this.#runs.values()) execution.loadFailed(error, this.exited);
        return;
      }
      this.#loaded = true;
      this.flush();
    });
  }

  /** Maps temp-file locations in errors and logs back to the function's files. */
  rewriteTrace(text: string): string {
    return this.#rewriteTrace(text);
  }

  #start(files: IsolateFiles, name: string, permissions: Permissions) {
    if (this.#stopped) return;
    this.#rewriteTrace = files.rewriteTrace;
    try {
      this.#worker = new Worker(files.mainUrl, {
        type: "module",
        name,
        deno: { permissions: workerPermissions(permissions) },
      });
    } catch (e) {
      this.#cannotStart(e);
      return;
    }
    const worker = this.#worker;
    worker.onmessage = (event: MessageEvent<IsolateMessage>) => this.#receive(event.data);
    worker.onmessageerror = () => {
      this.#crashed({
        message: "A message from the isolate could not be deserialized",
        stack: null,
      });
    };
    // Module load errors (syntax, a missing import, a throw at top level) and anything that
    // escaped the entry's own listeners arrive here; the Worker is gone afterwards (measured).
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.exited = true;
      this.#crashed({ message: event.message, stack: null });
    };
    for (const message of this.#early.splice(0)) worker.postMessage(message);
  }

  /** The bundle's files or the Worker could not be created: its runs fail with the reason. */
  #cannotStart(e: unknown) {
    this.exited = true;
    this.#resolveReady({
      message: `Cannot start an isolate: ${(e as Error).message}`,
      stack: null,
    });
  }

  /** True once the function has loaded and runs are being posted. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Runs queued or running here. */
  get load(): number {
    return this.#runs.size;
  }

  /** Whether another run may be queued here. */
  get open(): boolean {
    return this.#free.length > 0 && !this.stopping && !this.exited && !this.#stopped;
  }

  /** Queues a run; it is posted with the next flush(). */
  assign(execution: Execution): void {
    const slot = this.#free.pop();
    if (slot === undefined) throw new Error("No free run slot in this isolate");
    this.control.queue(slot, execution.runId, execution.cancelRequested);
    this.#runs.set(execution.runId, execution);
    execution.dispatched(this, slot);
    this.#unposted.push({ runId: execution.runId, slot, job: execution.job });
  }

  /** Posts the runs queued since the last flush, in one message (once the function has loaded). */
  flush(): void {
    if (!this.#loaded || this.#unposted.length === 0) return;
    this.post({ type: "runs", json: JSON.stringify(this.#unposted) });
    for (const run of this.#unposted) this.#runs.get(run.runId)?.posted();
    this.#unposted = [];
  }

  /**
   * Takes a run back before it starts; false when it has started (or finished). A run taken back
   * is skipped by the isolate and its slot is free again.
   */
  retract(execution: Execution): boolean {
    if (this.#runs.get(execution.runId) !== execution) return false;
    if (!this.control.transition(execution.slot, SlotState.QUEUED, SlotState.SKIPPED)) {
      return false;
    }
    this.release(execution);
    return true;
  }

  /** Frees the slot of a run that has ended (or was taken back). */
  release(execution: Execution): void {
    if (this.#runs.get(execution.runId) !== execution) return;
    this.#runs.delete(execution.runId);
    // Only a run taken back before its batch was posted is still here (no copy per run).
    if (this.#unposted.length > 0) {
      this.#unposted = this.#unposted.filter((r) => r.runId !== execution.runId);
    }
    this.#free.push(execution.slot);
  }

  /** Runs queued or running here, in order. */
  runs(): Execution[] {
    return [...this.#runs.values()];
  }

  /** The run executing now, if any. */
  running(): Execution | null {
    for (const execution of this.#runs.values()) {
      if (this.control.state(execution.slot) === SlotState.RUNNING) return execution;
    }
    return null;
  }

  /**
   * Hands finished runs their outcomes from the control block: all of them, or (`finished`, from
   * an "outcomes" message) those the isolate had finished when it posted that message. A run
   * that finished after it may still have log or progress messages on the way, which must reach
   * it before it ends; the next "outcomes" message, posted after them, brings it.
   */
  harvest(finished?: number): void {
    // forEach, not for-of: the iterator's result objects were 3% of the main heap's allocations
    // in a bench round (sampling heap profile), as the loop ran before V8 had optimised it.
    this.#runs.forEach((execution) => {
      const state = this.control.state(execution.slot);
      if (state !== SlotState.COMPLETED && state !== SlotState.FAILED) return;
      if (finished !== undefined && !this.control.finishedBy(execution.slot, finished)) return;
      execution.finished(
        state === SlotState.FAILED,
        this.control.outcome(execution.slot),
        this.control.elapsedMs(execution.slot),
      );
    });
  }

  post(message: HostMessage): void {
    if (this.#stopped) return;
    if (this.#worker) this.#worker.postMessage(message);
    else this.#early.push(message);
  }

  /** True when the isolate's event loop answered within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean> {
    if (this.exited || this.#stopped) return Promise.resolve(false);
    const id = nextPingId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pongs.delete(id);
        resolve(false);
      }, timeoutMs);
      this.#pongs.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
      this.post({ type: "ping", id });
    });
  }

  /**
   * Terminates the Worker. `worker.terminate()` does not stop a synchronous loop or a microtask
   * loop in Deno 2.9 (the thread keeps a core busy: measured 100% of a core for a `while(true)`
   * after terminate), so first ask whether the event loop still answers. Returns `stuck: true`
   * when it did not: the thread may run on, and only ending the process frees it. While it
   * waits for the answer, outcomes the isolate posted before reach their runs.
   */
  stop(pingTimeoutMs: number | null): Promise<{ stuck: boolean }> {
    this.#stopping ??= this.#stop(pingTimeoutMs);
    return this.#stopping;
  }

  async #stop(pingTimeoutMs: number | null): Promise<{ stuck: boolean }> {
    this.stopping = true;
    // Still loading its modules (compiling, fetching npm packages) is not being stuck:
    // terminate() stops a Worker that has not begun to evaluate code.
    const check = !this.exited && this.booted && pingTimeoutMs !== null;
    const stuck = check ? !(await this.ping(pingTimeoutMs)) : false;
    this.harvest();
    this.#stopped = true;
    this.#worker?.terminate();
    // Whatever still waits to load learns that it never will.
    this.#resolveReady({ message: "The isolate was stopped", stack: null });
    return { stuck };
  }

  #receive(message: IsolateMessage) {
    switch (message.type) {
      case "booted":
        this.booted = true;
        return;
      case "ready":
        this.#resolveReady(null);
        return;
      case "load_error":
        this.#resolveReady(message.error);
        return;
      case "pong":
        this.#pongs.get(message.id)?.();
        this.#pongs.delete(message.id);
        return;
      case "outcomes":
        this.harvest(message.finished);
        return;
      case "outcome":
        this.#runs.get(message.runId)?.finished(message.failed, message.json, null);
        return;
      case "progress":
      case "platform_request":
        this.#runs.get(message.runId)?.onEvent(message);
        return;
      case "log":
        // A line no run owns (module load, a timer left behind) goes to the run of the moment.
        (message.runId === null ? this.running() : this.#runs.get(message.runId))?.onEvent(
          message,
        );
        return;
      case "fatal":
        if (!this.#loaded) {
          // The job's module threw while it was evaluated: the module graph's evaluation
          // promise rejects, which the entry's unhandledrejection listener sees.
          this.#resolveReady(message.error);
          return;
        }
        this.#owner(message.runId)?.onEvent(message);
        return;
      case "exit": {
        this.exited = true;
        this.#resolveReady({
          message: `The module called Deno.exit(${message.code})`,
          stack: null,
        });
        const owner = this.#owner(message.runId);
        if (owner) owner.onEvent(message);
        else if (this.#loaded) this.onGone?.({ message: "The isolate exited", stack: null });
        return;
      }
    }
  }

  /** The run a message with `runId` belongs to: that run if it is here, else the current one. */
  #owner(runId: number | null): Execution | null {
    return (runId !== null ? this.#runs.get(runId) : undefined) ?? this.running();
  }

  #crashed(error: ErrorInfo) {
    this.exited = true;
    this.#resolveReady(error);
    if (!this.#loaded) return; // ready() reports it to the queued runs
    this.harvest();
    const running = this.running();
    if (running) running.onEvent({ type: "crashed", error });
    else this.onGone?.(error);
  }
}
