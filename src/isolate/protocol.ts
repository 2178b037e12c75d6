/**
 * Messages between the host (pool.ts / isolate_host.ts) and the code inside an isolate
 * (entry.ts). Every message about a job carries its `runId`, so a message from a run that already
 * ended (a timer the handler left behind) is recognised and ignored. Runs travel in batches and
 * their outcomes through the shared control block (control.ts); "outcomes" only says "look".
 */
import type { JobRun, LogLevel, PlatformRequest, PlatformResponse } from "./types.ts";

/** One job for the isolate's queue; `slot` is its place in the control block. */
export interface QueuedRun {
  runId: number;
  slot: number;
  job: JobRun;
}

export type HostMessage =
  /** Sent once, before any run: the control block shared with this isolate. */
  | { type: "init"; control: SharedArrayBuffer }
  /**
   * Jobs to run one after another, in this order, after those already queued: a QueuedRun[] as
   * JSON text. Everything in a run is JSON already (the payload comes from a jsonb column), and
   * one string crosses to the isolate for less than a structured clone of the same objects
   * (measured: 22-23 instead of 24-25 us of CPU per no-op run, bench/pool.ts).
   */
  | { type: "runs"; json: string }
  | { type: "platform_response"; requestId: number; response: PlatformResponse }
  | { type: "platform_error"; requestId: number; error: string }
  /** Answered with "pong" whenever the isolate's event loop is free. */
  | { type: "ping"; id: number };

export interface ErrorInfo {
  message: string;
  stack: string | null;
}

export type IsolateMessage =
  /** The module graph has loaded and the runtime is installed; the job's module evaluates next. */
  | { type: "booted" }
  /** The function's module loaded and exports a handler. */
  | { type: "ready" }
  /** The module loaded but has no handler (load errors themselves arrive as Worker errors). */
  | { type: "load_error"; error: ErrorInfo }
  | { type: "progress"; runId: number; percent: number; message: string | null; data: unknown }
  /** `runId` null: printed while the module loaded, or by code no run owns. */
  | { type: "log"; runId: number | null; level: LogLevel; message: string; at: number }
  | { type: "platform_request"; runId: number; requestId: number; request: PlatformRequest }
  /**
   * Finished runs wait in the control block: read those among the first `finished` runs this
   * isolate finished (a later one's messages may still be on their way).
   */
  | { type: "outcomes"; finished: number }
  /**
   * A finished run whose outcome did not fit its slot: the result (completed) or the ErrorInfo
   * (failed) as JSON text.
   */
  | { type: "outcome"; runId: number; failed: boolean; json: string }
  /** The job called `Deno.exit(code)`; the isolate stops right after this message. */
  | { type: "exit"; runId: number | null; code: number }
  /** An unhandled rejection or an uncaught error outside the handler's own promise. */
  | {
    type: "fatal";
    runId: number | null;
    what: "unhandled rejection" | "uncaught error";
    error: ErrorInfo;
  }
  | { type: "pong"; id: number };
