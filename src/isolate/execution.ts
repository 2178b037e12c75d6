/**
 * One job on one isolate: posts the run, forwards progress, logs and platform calls to the
 * hooks, and decides how the run ends (result, error, timeout, progress timeout, cancel,
 * terminate) and whether the isolate may serve the next job.
 */
import type { IsolateEvent, IsolateHost } from "./isolate_host.ts";
import type { FunctionBundle, JobRun, RunHooks, RunLimits, RunOutcome } from "./types.ts";

type Outcome = RunOutcome extends infer O ? O extends unknown ? Omit<O, "isolateStuck"> : never
  : never;

/** What to do with the isolate afterwards. */
export type Disposal =
  | "reuse" /** the handler returned or threw: the isolate is clean */
  | "stop" /** forced: terminate, checking first whether it is stuck */
  | "gone"; /** it ended by itself (Deno.exit, crash): nothing to stop */

export interface Ending {
  outcome: Outcome;
  disposal: Disposal;
}

let nextRunId = 1;

export class Execution {
  readonly runId = nextRunId++;
  readonly ended: Promise<Ending>;
  readonly #cancelFlag = new SharedArrayBuffer(4);
  #end!: (ending: Ending) => void;
  #settled = false;
  #cancelRequested = false;
  #timers: Array<ReturnType<typeof setTimeout>> = [];
  #progressTimer: ReturnType<typeof setTimeout> | undefined;
  #host: IsolateHost | null = null;
  #posted = false;

  constructor(
    readonly bundle: FunctionBundle,
    readonly job: JobRun,
    readonly hooks: RunHooks,
    readonly limits: RunLimits,
  ) {
    this.ended = new Promise((resolve) => (this.#end = resolve));
    const seconds = formatSeconds(limits.timeoutMs);
    this.#timers.push(
      setTimeout(
        () => this.#finish({ kind: "timed_out", error: `timed out after ${seconds} s` }, "stop"),
        limits.timeoutMs,
      ),
    );
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** Runs the job on `host` once it has loaded (the time it takes to load counts against the timeout). */
  async start(host: IsolateHost): Promise<void> {
    this.#host = host;
    host.attach((event) => this.#onEvent(event));
    const loadError = await host.ready;
    if (this.#settled) return;
    if (loadError) {
      const error = `Cannot load job function "${this.bundle.name}": ${loadError.message}`;
      this.#finish(
        { kind: "failed", error, stack: loadError.stack },
        host.exited ? "gone" : "stop",
      );
      return;
    }
    host.post({ type: "run", runId: this.runId, job: this.job, cancelFlag: this.#cancelFlag });
    this.#posted = true;
    // The job's silence is measured from its start; loading counts against the timeout only.
    this.#armProgressTimer();
  }

  cancel(): void {
    Atomics.store(new Int32Array(this.#cancelFlag), 0, 1);
    if (this.#settled || this.#cancelRequested) return;
    this.#cancelRequested = true;
    this.#timers.push(
      setTimeout(() => this.#finish({ kind: "cancelled" }, "stop"), this.limits.cancelGraceMs),
    );
  }

  terminate(reason: string): void {
    this.#finish({ kind: "terminated", error: reason }, "stop");
  }

  #onEvent(event: IsolateEvent) {
    if ("runId" in event && event.runId !== null && event.runId !== this.runId) return;
    switch (event.type) {
      case "progress":
        this.#armProgressTimer();
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
      case "completed":
        this.#finish({ kind: "completed", result: event.result }, "reuse");
        return;
      case "failed":
        this.#finish(
          { kind: "failed", error: event.error.message, stack: event.error.stack },
          "reuse",
        );
        return;
      case "exit":
        this.#finish({
          kind: "failed",
          error: `The job called Deno.exit(${event.code})`,
          stack: null,
        }, "gone");
        return;
      case "fatal": {
        if (!this.#posted) return; // a module that throws while loading: start() reports it
        const error = `${capitalize(event.what)}: ${event.error.message}`;
        this.#finish({ kind: "failed", error, stack: event.error.stack }, "stop");
        return;
      }
      case "crashed":
        // Before the run was posted, a crash is the module failing to load (syntax, top-level throw).
        if (!this.#posted) return;
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
    const host = this.#host!;
    Promise.resolve()
      .then(() => this.hooks.onPlatformRequest(request))
      .then(
        (response) => host.post({ type: "platform_response", requestId, response }),
        (e) =>
          host.post({
            type: "platform_error",
            requestId,
            error: (e as Error)?.message ?? String(e),
          }),
      );
  }

  #armProgressTimer() {
    const limit = this.limits.progressTimeoutMs;
    if (limit === null || this.#settled) return;
    clearTimeout(this.#progressTimer);
    this.#progressTimer = setTimeout(() => {
      const error = `no progress reported for ${formatSeconds(limit)} s`;
      this.#finish({ kind: "progress_timed_out", error }, "stop");
    }, limit);
  }

  #trace(text: string): string {
    return this.#host ? this.#host.rewriteTrace(text) : text;
  }

  #finish(outcome: Outcome, disposal: Disposal) {
    if (this.#settled) return;
    if ("error" in outcome) outcome = { ...outcome, error: this.#trace(outcome.error) };
    if ("stack" in outcome && outcome.stack) {
      outcome = { ...outcome, stack: this.#trace(outcome.stack) };
    }
    this.#settled = true;
    for (const timer of this.#timers) clearTimeout(timer);
    clearTimeout(this.#progressTimer);
    this.#host?.attach(null);
    // A cancelled job that returned (or threw) in its grace period still ends as cancelled.
    if (this.#cancelRequested && (outcome.kind === "completed" || outcome.kind === "failed")) {
      outcome = { kind: "cancelled" };
    }
    this.#end({ outcome, disposal });
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
