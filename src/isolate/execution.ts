/**
 * One job's run: its time limits, cancellation and outcome. The pool queues it on an isolate
 * (isolate_host.ts), whose messages and control block bring its progress, logs, platform calls
 * and end; the execution decides how the run ends (result, error, timeout, progress timeout,
 * cancel, terminate) and whether its isolate may serve the next job.
 */
import { SlotState } from "./control.ts";
import type { Deadline, Deadlines } from "./deadlines.ts";
import type { IsolateHost } from "./isolate_host.ts";
import type { ErrorInfo, IsolateMessage } from "./protocol.ts";
import type {
  FunctionBundle,
  JobRun,
  RunHandle,
  RunHooks,
  RunLimits,
  RunOutcome,
} from "./types.ts";

type Outcome = RunOutcome extends infer O ? O extends unknown ? Omit<O, "isolateStuck"> : never
  : never;

/** What to do with the isolate afterwards. */
export type Disposal =
  | "reuse" /** the handler returned or threw: the isolate is clean */
  | "stop" /** forced: stop the run, terminating the isolate if the run has started */
  | "gone"; /** it ended by itself (Deno.exit, crash): nothing to stop */

export interface Ending {
  outcome: Outcome;
  disposal: Disposal;
}

/** Events of a run that arrive as messages (or from the Worker itself). */
export type RunEvent =
  | Extract<IsolateMessage, { type: "progress" | "log" | "platform_request" | "exit" | "fatal" }>
  | { type: "crashed"; error: ErrorInfo };

let nextRunId = 1;

/**
 * The run as the pool hands it out: the RunHandle of types.ts. How it ended reaches the pool
 * through `onEnd`, which settles the isolate and then calls `resolve`: the caller learns the
 * outcome from its `onEnd` hook, or from `done`, a promise made only when asked for.
 */
export class Execution implements RunHandle {
  readonly runId = nextRunId++;
  /** How the run ended, once it has (the pool settles its isolate, then calls `resolve`). */
  ending: Ending | null = null;
  #outcome: RunOutcome | null = null;
  #done: Promise<RunOutcome> | null = null;
  #resolveDone: ((outcome: RunOutcome) => void) | null = null;
  /** The isolate it is queued on or running in, and its slot there; null while it waits. */
  lane: IsolateHost | null = null;
  slot = -1;
  #settled = false;
  #cancelRequested = false;
  #timeout: Deadline | null = null;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #progressCheck: Deadline | null = null;
  /** When the run last reported progress (or was posted to its loaded isolate). */
  #lastProgressAt = 0;
  /** Posted to its isolate, which has loaded the function: silence counts from then on. */
  #posted = false;
  /** The handler's own run time, when it finished by itself (the pool batches quick functions). */
  elapsedMs: number | null = null;

  constructor(
    readonly bundle: FunctionBundle,
    readonly job: JobRun,
    readonly hooks: RunHooks,
    readonly limits: RunLimits,
    /** Isolates with this key may run it (pool.ts isolateKey). */
    readonly key: string,
    /** The pool's timers for run deadlines. */
    private readonly deadlines: Deadlines,
    /** Called once, when the run has ended (`ending` is set). */
    private readonly onEnd: (execution: Execution) => void,
  ) {
    this.#armTimeout();
  }

  get done(): Promise<RunOutcome> {
    if (this.#done) return this.#done;
    if (this.#outcome) return this.#done = Promise.resolve(this.#outcome);
    return this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /** The pool: the run has ended and its isolate is settled. Safe twice (the first counts). */
  resolve(outcome: RunOutcome): void {
    if (this.#outcome) return;
    this.#outcome = outcome;
    this.#resolveDone?.(outcome);
    try {
      this.hooks.onEnd?.(outcome);
    } catch (e) {
      console.error("An isolate run hook threw:", e);
    }
  }

  get settled(): boolean {
    return this.#settled;
  }

  get cancelRequested(): boolean {
    return this.#cancelRequested;
  }

  /** Queued on `lane` at `slot`; the timeout runs since creation, silence from `posted()`. */
  dispatched(lane: IsolateHost, slot: number): void {
    this.lane = lane;
    this.slot = slot;
    this.#posted = false;
    this.#armProgressCheck(this.limits.progressTimeoutMs);
  }

  /**
   * Posted to its isolate, whose function has loaded: the handler can report from now on. A
   * cold isolate's load (seconds, with npm imports) is no silence of the job's; the timeout
   * still counts it.
   */
  posted(): void {
    this.#posted = true;
    this.#lastProgressAt = performance.now();
  }

  /** Its isolate stopped before the run started: it waits again, and its clock starts over. */
  requeued(): void {
    this.lane = null;
    this.slot = -1;
    this.#progressCheck?.cancel();
    this.#progressCheck = null;
    this.#armTimeout();
  }

  cancel(): void {
    if (this.lane) this.lane.control.cancel(this.slot);
    if (this.#settled || this.#cancelRequested) return;
    this.#cancelRequested = true;
    this.#graceTimer = setTimeout(
      () => this.#finish({ kind: "cancelled" }, "stop"),
      this.limits.cancelGraceMs,
    );
  }

  terminate(reason: string): void {
    this.#finish({ kind: "terminated", error: reason }, "stop");
  }

  /** The handler returned (`json`: its result) or threw (`json`: an ErrorInfo). */
  finished(failed: boolean, json: string, elapsedMs: number | null): void {
    if (this.#settled) return;
    this.elapsedMs = elapsedMs;
    if (failed) {
      const error = JSON.parse(json) as ErrorInfo;
      this.#finish({ kind: "failed", error: error.message, stack: error.stack }, "reuse");
    } else {
      this.#finish({ kind: "completed", result: JSON.parse(json) }, "reuse");
    }
  }

  /** Its isolate could not load the function. */
  loadFailed(error: ErrorInfo, exited: boolean): void {
    this.#finish(
      {
        kind: "failed",
        error: `Cannot load job function "${this.bundle.name}": ${error.message}`,
        stack: error.stack,
      },
      exited ? "gone" : "stop",
    );
  }

  onEvent(event: RunEvent): void {
    switch (event.type) {
      case "progress":
        this.#lastProgressAt = performance.now();
        guard(() =>
          this.hooks.onProgress({
            percent: event.percent,
            message: event.message,
            data: event.data,
          })
        );
        return;
      case "log":
        guard(() =>
          this.hooks.onLog({
            level: event.level,
            message: this.#trace(event.message),
            at: new Date(event.at),
          })
        );
        return;
      case "platform_request":
        this.#forwardPlatformRequest(event.requestId, event.request);
        return;
      case "exit":
        this.#finish({
          kind: "failed",
          error: `The job called Deno.exit(${event.code})`,
          stack: null,
        }, "gone");
        return;
      case "fatal": {
        const error = `${capitalize(event.what)}: ${event.error.message}`;
        this.#finish({ kind: "failed", error, stack: event.error.stack }, "stop");
        return;
      }
      case "crashed":
        this.#finish({
          kind: "failed",
          error: `The isolate crashed: ${event.error.message}`,
          stack: null,
        }, "gone");
        return;
    }
  }

  #forwardPlatformRequest(
    requestId: number,
    request: Parameters<RunHooks["onPlatformRequest"]>[0],
  ) {
    const lane = this.lane!;
    Promise.resolve()
      .then(() => this.hooks.onPlatformRequest(request))
      .then(
        (response) => lane.post({ type: "platform_response", requestId, response }),
        (e) =>
          lane.post({
            type: "platform_error",
            requestId,
            error: (e as Error)?.message ?? String(e),
          }),
      );
  }

  /**
   * True while the run waits in its isolate behind another run that has started: that run's
   * own limits stop it, and then this one moves to another isolate, so its clock must not run
   * out meanwhile. (A run of an isolate that never finished loading has no such excuse.)
   */
  #waitingBehindAnother(): boolean {
    const lane = this.lane;
    if (!lane || lane.control.state(this.slot) !== SlotState.QUEUED) return false;
    return lane.running() !== null;
  }

  #armTimeout() {
    this.#timeout?.cancel();
    this.#timeout = this.deadlines.add(this.limits.timeoutMs, () => {
      if (this.#waitingBehindAnother()) return this.#armTimeout();
      const seconds = formatSeconds(this.limits.timeoutMs);
      this.#finish({ kind: "timed_out", error: `timed out after ${seconds} s` }, "stop");
    });
  }

  /** Checks for silence `inMs` from now; a progress report only moves #lastProgressAt. */
  #armProgressCheck(inMs: number | null) {
    const limit = this.limits.progressTimeoutMs;
    if (limit === null || inMs === null || this.#settled) return;
    this.#progressCheck?.cancel();
    this.#progressCheck = this.deadlines.add(inMs, () => {
      this.#progressCheck = null;
      if (!this.#posted || this.#waitingBehindAnother()) return this.#armProgressCheck(limit);
      const silentMs = performance.now() - this.#lastProgressAt;
      if (silentMs < limit) return this.#armProgressCheck(Math.ceil(limit - silentMs));
      const error = `no progress reported for ${formatSeconds(limit)} s`;
      this.#finish({ kind: "progress_timed_out", error }, "stop");
    });
  }

  #trace(text: string): string {
    return this.lane ? this.lane.rewriteTrace(text) : text;
  }

  #finish(outcome: Outcome, disposal: Disposal) {
    if (this.#settled) return;
    if ("error" in outcome) outcome = { ...outcome, error: this.#trace(outcome.error) };
    if ("stack" in outcome && outcome.stack) {
      outcome = { ...outcome, stack: this.#trace(outcome.stack) };
    }
    this.#settled = true;
    this.#timeout?.cancel();
    clearTimeout(this.#graceTimer);
    this.#progressCheck?.cancel();
    // A cancelled job that returned (or threw) in its grace period still ends as cancelled.
    if (this.#cancelRequested && (outcome.kind === "completed" || outcome.kind === "failed")) {
      outcome = { kind: "cancelled" };
    }
    this.ending = { outcome, disposal };
    this.onEnd(this);
  }
}

function guard(hook: () => void) {
  try {
    hook();
  } catch (e) {
    // A hook that throws must not end the job, nor the process that hosts it.
    console.error("An isolate run hook threw:", e);
  }
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return Number.isInteger(s) ? String(s) : s.toFixed(1);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
