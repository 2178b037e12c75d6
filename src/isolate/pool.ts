/**
 * Warm, permissioned isolates for job functions. Creating a Worker and loading a handler costs
 * tens of milliseconds, posting a job to a live one well under one (DESIGN.md), so isolates are
 * kept per (function, version, permissions) and reused for the next job of that function. Every
 * isolate runs one job at a time.
 *
 * Isolates take turns for the cores: at most `maxActive` isolates start work at once, and one
 * holds its turn only for `sliceMs`, after which it counts as long-running and lets the next
 * one in. Each message between host and isolate wakes a thread, and on this 2-core machine 50
 * Workers passing messages concurrently managed 9,000 round trips/s against 22,000 with 4. A
 * job that waits for a turn waits at most `sliceMs`.
 *
 * Quick functions (their last `QUICK_AFTER_RUNS` runs took under `quickMs` each) go further:
 * their runs queue on an isolate already busy with the same function, as many as it can run
 * within `JOIN_BUDGET_MS`, and travel in batches, one message for all runs queued in the same
 * tick, with their outcomes in shared memory (control.ts). Measured with no-op runs, 4 Workers:
 * 19,000 runs/s with one message per run each way, 82,000 in batches of 16. A run queued behind
 * another that turns out slow does not lose its time: its clock waits, and when the slow run is
 * stopped the runs behind it move to another isolate before they start (execution.ts,
 * isolate_host.ts retract()).
 */
import { SLOTS, SlotState } from "./control.ts";
import { Deadlines } from "./deadlines.ts";
import { type Ending, Execution } from "./execution.ts";
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
/** Runs of a quick function queued on one isolate at most (the control block's slots). */
const MAX_QUEUED_PER_ISOLATE = SLOTS;
/**
 * A quick run joins a busy isolate rather than taking a turn on another one while the runs
 * queued there would take at most this long: fewer, fuller batches cost less per run
 * (measured, no-op runs: 36-49 us of CPU per run with batches capped at 16 and a new isolate
 * whenever a turn was free, 23-29 us joining up to 64).
 */
const JOIN_BUDGET_MS = 2;
/** With no turn free, a quick run still joins a busy isolate with fewer than this queued. */
const JOIN_WHEN_NO_TURN = 16;
/** A function whose last this many runs each took less than `quickMs` is batched. */
const QUICK_AFTER_RUNS = 5;
const NO_LANES: readonly IsolateHost[] = [];

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
  /** Runs that take less than this count as quick (default 1 ms; see above). */
  quickMs?: number;
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
  /**
   * Isolates with runs queued or running, by key. Arrays, not sets: every placement walks them,
   * and a set's iterator allocated for each (2% of the main heap's allocations in a bench round).
   */
  readonly #busy = new Map<string, IsolateHost[]>();
  readonly #bundles = new Map<string, BundleFiles>();
  /**
   * Per isolate key, for the batching decision: how many runs in a row took under `quickMs`,
   * and their average time.
   */
  readonly #quick = new Map<string, { streak: number; averageMs: number }>();
  readonly #running = new Set<Execution>();
  /** Runs that ended since the last settle, whose isolates are settled in one microtask. */
  #ended: Execution[] = [];
  readonly #disposed = new WeakSet<IsolateHost>();
  readonly #deadlines = new Deadlines();
  readonly #maxActive: number;
  readonly #sliceMs: number;
  readonly #quickMs: number;
  /** Isolates holding a turn, with the time they got it. */
  readonly #active = new Map<IsolateHost, number>();
  /** Runs not yet queued on an isolate, in arrival order. */
  #waiting: Execution[] = [];
  #pumpScheduled = false;
  #sliceTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;

  constructor(options: IsolatePoolOptions = {}) {
    this.#idleTtlMs = options.idleTtlMs ?? 60_000;
    this.#maxIdle = options.maxIdlePerFunction ?? 2;
    this.#stuckPingMs = options.stuckPingMs ?? 250;
    this.#tempDir = options.tempDir;
    this.#maxActive = Math.max(1, options.maxActive ?? 2 * (navigator.hardwareConcurrency || 1));
    this.#sliceMs = options.sliceMs ?? 10;
    this.#quickMs = options.quickMs ?? 1;
  }

  run(bundle: FunctionBundle, job: JobRun, hooks: RunHooks, limits: RunLimits): RunHandle {
    const execution = new Execution(
      bundle,
      job,
      hooks,
      limits,
      isolateKey(bundle),
      this.#deadlines,
      this.#onEnd,
    );
    this.#running.add(execution);
    if (this.#closed) execution.terminate("The isolate pool is shut down");
    else this.#enqueue(execution);
    // The execution is its own handle (done, cancel, terminate): no wrapper object per job.
    return execution;
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
    await Promise.allSettled([...this.#running].map((e) => e.done));
    const idle = [...this.#idle.values()].flat();
    this.#idle.clear();
    await Promise.all(idle.map((host) => this.#dispose(host, false)));
    await Promise.all([...this.#bundles.values()].map(async (b) => (await b.files).remove()));
    this.#bundles.clear();
  }

  /**
   * A run ended: its isolate is settled in a microtask, with those of the other runs that
   * ended meanwhile (a batch of outcomes ends many runs at once). One promise per run (`done`)
   * instead of an async function per run and per isolate settled.
   */
  readonly #onEnd = (execution: Execution): void => {
    this.#ended.push(execution);
    if (this.#ended.length === 1) queueMicrotask(this.#settleEnded);
  };

  readonly #settleEnded = (): void => {
    const ended = this.#ended;
    this.#ended = [];
    for (const execution of ended) {
      const ending = execution.ending!;
      const lane = execution.lane;
      try {
        // One that ended while it waited leaves the queue at the next pump (it skips settled
        // runs).
        const stuck = lane ? this.#settleLane(lane, execution, ending) : false;
        if (stuck === false) this.#resolve(execution, ending, false);
        else {
          stuck.then(
            (isStuck) => this.#resolve(execution, ending, isStuck),
            (e) => this.#settleFailed(execution, ending, e),
          );
        }
      } catch (e) {
        this.#settleFailed(execution, ending, e);
      }
    }
    this.#schedulePump();
  };

  /** An isolate that could not be settled counts as stuck: its process gets replaced. */
  #settleFailed(execution: Execution, ending: Ending, e: unknown): void {
    console.error("Settling an isolate failed:", e);
    this.#resolve(execution, ending, true);
  }

  #resolve(execution: Execution, ending: Ending, isolateStuck: boolean): void {
    this.#running.delete(execution);
    execution.resolve({ ...ending.outcome, isolateStuck } as RunOutcome);
  }

  /**
   * Frees the run's place in its isolate, or stops the isolate: false when that is done, or a
   * promise of whether the isolate had to be stopped and did not answer.
   */
  #settleLane(lane: IsolateHost, execution: Execution, ending: Ending): false | Promise<boolean> {
    if (ending.disposal === "reuse") {
      this.#noteRunTime(execution);
      lane.release(execution);
      this.#laneChanged(lane);
      return false;
    }
    if (ending.disposal === "stop" && lane.loaded) {
      // Not started yet (queued behind another run), or finished by itself meanwhile: the
      // isolate is fine, only this run is dropped. (One still loading is stopped: its loading
      // may be what ran out of time.)
      const state = lane.control.state(execution.slot);
      const finished = state === SlotState.COMPLETED || state === SlotState.FAILED ||
        state === SlotState.POSTED;
      if (lane.retract(execution) || (finished && !lane.stopping)) {
        lane.release(execution);
        this.#laneChanged(lane);
        return false;
      }
    }
    return this.#stopLane(lane, ending.disposal === "stop");
  }

  /**
   * Stops an isolate whose current run must end (or that ended by itself): runs queued behind
   * it that have not started go back to the queue, those that finished keep their outcomes.
   */
  async #stopLane(lane: IsolateHost, checkStuck: boolean): Promise<boolean> {
    if (!lane.stopping) {
      lane.stopping = true;
      this.#removeBusy(lane);
      lane.harvest();
      const back = lane.runs().filter((e) => !e.settled && lane.retract(e));
      for (const e of back) e.requeued();
      this.#requeue(back);
    }
    const stuck = await this.#dispose(lane, checkStuck);
    // Finished, but its outcome message never arrived before the isolate was stopped.
    for (const e of lane.runs()) {
      e.terminate("The isolate stopped before this job's outcome arrived");
      lane.release(e);
    }
    return stuck;
  }

  /** Adds a run to the queue. */
  #enqueue(execution: Execution) {
    this.#waiting.push(execution);
    this.#schedulePump();
  }

  /** Puts runs back at the front of the queue, ahead of the others, as they were there first. */
  #requeue(executions: Execution[]) {
    if (executions.length === 0) return;
    this.#waiting = [...executions, ...this.#waiting];
    this.#schedulePump();
  }

  /** Places waiting runs once per tick, so runs submitted together travel together. */
  #schedulePump() {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(this.#pumpNow);
  }

  /** The scheduled pump, one function for every schedule. */
  readonly #pumpNow = () => {
    this.#pumpScheduled = false;
    this.#pump();
  };

  #pump() {
    if (this.#waiting.length === 0) return;
    const touched = new Set<IsolateHost>();
    const left: Execution[] = [];
    for (const execution of this.#waiting) {
      if (execution.settled) continue;
      const lane = this.#closed ? null : this.#place(execution);
      if (!lane) {
        left.push(execution);
        continue;
      }
      lane.assign(execution);
      touched.add(lane);
    }
    this.#waiting = left;
    for (const lane of touched) lane.flush();
    this.#armSlice();
  }

  /** An isolate for the run now, or null when it must wait for a turn. */
  #place(execution: Execution): IsolateHost | null {
    const key = execution.key;
    const quick = this.#quick.get(key);
    let least: IsolateHost | null = null;
    if (quick && quick.streak >= QUICK_AFTER_RUNS) {
      // The fullest isolate the run still fits in, not the emptiest: quick runs gather on as
      // few isolates as their budget allows. Measured in the jobs bench (two sets of 6 paired
      // runs), worker CPU per job fell from 52 / 38 / 24 to 43 / 38 / 24 us and from
      // 51 / 43 / 27 to 48 / 39 / 24 (rounds 1 / 2 / 3), most in the first round (likely as
      // fewer isolates have to warm up their code; not measured). About 60% of the posts find the
      // isolate idle either way (a no-op isolate empties its queue before the host refills it),
      // and such a post costs the host 70-90 us against 8-9 to a busy isolate.
      let fullest: IsolateHost | null = null;
      const busy = this.#busy.get(key) ?? NO_LANES;
      for (let i = 0; i < busy.length; i++) {
        const lane = busy[i];
        if (!lane.open || lane.load >= MAX_QUEUED_PER_ISOLATE) continue;
        if (!least || lane.load < least.load) least = lane;
        if ((lane.load + 1) * quick.averageMs > JOIN_BUDGET_MS) continue;
        if (!fullest || lane.load > fullest.load) fullest = lane;
      }
      if (fullest) return fullest;
    }
    if (this.#active.size < this.#maxActive) return this.#open(execution);
    return least && least.load < JOIN_WHEN_NO_TURN ? least : null;
  }

  /** A warm or new isolate for the run, taking a turn. */
  #open(execution: Execution): IsolateHost {
    const lane = this.#takeIdle(execution.key) ?? this.#create(execution);
    this.#active.set(lane, performance.now());
    // An idle or new isolate: never in the busy list already (#laneChanged removes it first).
    let busy = this.#busy.get(lane.key);
    if (!busy) this.#busy.set(lane.key, busy = []);
    busy.push(lane);
    return lane;
  }

  /** After a run left the isolate: idle now, or still busy. */
  #laneChanged(lane: IsolateHost) {
    if (lane.load > 0 || lane.stopping) return;
    this.#removeBusy(lane);
    if (this.#closed || lane.exited) void this.#dispose(lane, false);
    else this.#release(lane);
  }

  #removeBusy(lane: IsolateHost) {
    const busy = this.#busy.get(lane.key);
    const index = busy?.indexOf(lane) ?? -1;
    if (index >= 0) busy!.splice(index, 1);
    if (this.#active.delete(lane)) this.#schedulePump();
  }

  /** One slow run ends the streak: a function that sometimes takes long runs unbatched. */
  #noteRunTime(execution: Execution) {
    const ms = execution.elapsedMs;
    if (ms === null) return;
    const quick = this.#quick.get(execution.key);
    if (!quick) {
      this.#quick.set(execution.key, { streak: ms < this.#quickMs ? 1 : 0, averageMs: ms });
    } else if (ms >= this.#quickMs) {
      quick.streak = 0;
      quick.averageMs = ms;
    } else {
      // The average covers the current streak only: a slow run before it says nothing now.
      quick.averageMs = quick.streak === 0 ? ms : quick.averageMs + (ms - quick.averageMs) * 0.1;
      quick.streak++;
    }
  }

  /** While runs wait, ends the turn of the oldest active isolate when its slice is over. */
  #armSlice(): void {
    if (this.#sliceTimer !== null || this.#waiting.length === 0 || this.#active.size === 0) {
      return;
    }
    const oldest = Math.min(...this.#active.values());
    const delay = Math.max(0, oldest + this.#sliceMs - performance.now());
    this.#sliceTimer = setTimeout(() => {
      this.#sliceTimer = null;
      const now = performance.now();
      for (const [lane, since] of this.#active) {
        if (now - since >= this.#sliceMs) this.#active.delete(lane);
      }
      this.#pump();
    }, delay);
  }

  #takeIdle(key: string): IsolateHost | null {
    const host = this.#idle.get(key)?.pop() ?? null;
    if (host) {
      clearTimeout(this.#idleTimers.get(host));
      this.#idleTimers.delete(host);
    }
    return host;
  }

  #create(execution: Execution): IsolateHost {
    const bundle = execution.bundle;
    const versionKey = `${bundle.id}@${bundle.version}`;
    let files = this.#bundles.get(versionKey);
    if (!files) {
      files = { files: materializeBundle(bundle, this.#tempDir), isolates: 0 };
      this.#bundles.set(versionKey, files);
    }
    files.isolates++;
    const name = `fluxbase:${bundle.namespace}/${bundle.name}@${bundle.version}`;
    const lane = new IsolateHost(execution.key, files.files, name, bundle.permissions);
    lane.onGone = () => void this.#stopLane(lane, false);
    return lane;
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
    const first = !this.#disposed.has(host);
    this.#disposed.add(host);
    const { stuck } = await host.stop(checkStuck ? this.#stuckPingMs : null);
    if (first) this.#forgetIsolate(host.key.split("\0", 1)[0]);
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

/** Keys of the bundles seen, computed once per bundle object (a worker reuses its bundles). */
const isolateKeys = new WeakMap<FunctionBundle, string>();

/** Isolates are shared by jobs of the same function version with the same permissions. */
function isolateKey(bundle: FunctionBundle): string {
  let key = isolateKeys.get(bundle);
  if (key === undefined) {
    const p = bundle.permissions;
    const grants = ["net", "env", "read", "write", "run"].map((k) =>
      JSON.stringify(p[k as keyof typeof p] ?? false)
    );
    key = `${bundle.id}@${bundle.version}\0${grants.join(",")}`;
    isolateKeys.set(bundle, key);
  }
  return key;
}
