/**
 * The isolate layer's public types (docs/contracts.md, "Isolates"). The worker process hands a
 * `FunctionBundle` and a `JobRun` to `IsolatePool.run()` and gets a `RunHandle` back.
 */

/** What a job may touch. A missing key grants nothing; `true` grants all; a list grants those. */
export interface Permissions {
  net?: true | string[];
  env?: true | string[];
  read?: true | string[];
  write?: true | string[];
  run?: true | string[];
}

/** One deployed version of a job function, as stored in `jobs.functions`. */
export interface FunctionBundle {
  id: string;
  name: string;
  namespace: string;
  version: number;
  /** Source of the entry module (`<name>.ts` or `<name>/index.ts`). */
  code: string;
  /** Local modules the entry imports, transitively: path relative to the entry -> source. */
  files: Record<string, string>;
  permissions: Permissions;
  /** Recorded from `@fluxbase:memory`; not enforceable per isolate (see README of src/isolate). */
  memoryLimitMb: number | null;
}

export interface JobUser {
  id: string;
  email: string | null;
  role: string;
}

/** Per-job state, sent with each run and never kept in the isolate after it. */
export interface JobRun {
  jobId: string;
  jobName: string;
  namespace: string;
  retryCount: number;
  payload: unknown;
  user: JobUser | null;
  /** What `Deno.env` shows the job (see env.ts `buildJobEnv`). */
  env: Record<string, string>;
}

/** A call of the job's `fluxbase` (user) or `fluxbaseService` (service role) client. */
export interface PlatformRequest {
  client: "user" | "service";
  method: string;
  /** Path and query, e.g. "/api/v1/jobs/submit". */
  path: string;
  headers: Record<string, string>;
  body: string | null;
}

export interface PlatformResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface ProgressUpdate {
  percent: number;
  message: string | null;
  data: unknown;
}

export interface LogLine {
  level: LogLevel;
  message: string;
  at: Date;
}

export interface RunHooks {
  onProgress(p: ProgressUpdate): void;
  onLog(line: LogLine): void;
  onPlatformRequest(req: PlatformRequest): Promise<PlatformResponse>;
  /**
   * Called with the outcome when the run has ended and its isolate is settled, as `done`
   * resolves. A caller that takes it here need not touch `done`, which is then never made.
   */
  onEnd?(outcome: RunOutcome): void;
}

export interface RunLimits {
  timeoutMs: number;
  /** Fail when no progress was reported for this long; null: no limit. */
  progressTimeoutMs: number | null;
  /** After `cancel()`, how long the handler may take to return before the isolate is terminated. */
  cancelGraceMs: number;
}

export type RunOutcome =
  & (
    | { kind: "completed"; result: unknown }
    /** Thrown error, `Deno.exit()`, unhandled rejection or a module that does not load. */
    | { kind: "failed"; error: string; stack: string | null }
    | { kind: "timed_out"; error: string }
    | { kind: "progress_timed_out"; error: string }
    | { kind: "cancelled" }
    | { kind: "terminated"; error: string }
  )
  & {
    /** True: the isolate did not stop and may still burn a core; recycle the worker process. */
    isolateStuck: boolean;
  };

export interface RunHandle {
  done: Promise<RunOutcome>;
  /** `job.checkCancellation()` turns true at once; terminated after `cancelGraceMs`. */
  cancel(): void;
  /** Stops the job now (admin terminate). */
  terminate(reason: string): void;
}
