/**
 * Messages between the host (pool.ts / isolate_host.ts) and the code inside an isolate
 * (entry.ts). Every message about a job carries its `runId`, so a message from a run that already
 * ended (a timer the handler left behind) is recognised and ignored.
 */
import type { JobRun, LogLevel, PlatformRequest, PlatformResponse } from "./types.ts";

export type HostMessage =
  /** Start a job. `cancelFlag` is an Int32Array's buffer: element 0 turns 1 on cancel. */
  | { type: "run"; runId: number; job: JobRun; cancelFlag: SharedArrayBuffer }
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
  | { type: "completed"; runId: number; result: unknown }
  | { type: "failed"; runId: number; error: ErrorInfo }
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
