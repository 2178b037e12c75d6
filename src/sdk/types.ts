/**
 * Types shared by every part of the SDK: the job record, results and errors.
 * Field names follow the REST API (snake_case), so what the server sends is what you read.
 */

/** The state of a job; see the state machine in the spec ("Job States"). */
export type JobStatus = "pending" | "running" | "completed" | "failed" | "cancelled";

/** Progress a job function reported with `job.reportProgress(percent, message, data)`. */
export interface JobProgress {
  percent: number;
  message: string | null;
  data?: Record<string, unknown> | null;
}

/** A job as the server returns it (REST and realtime). */
export interface Job {
  id: string;
  job_name: string;
  namespace: string;
  status: JobStatus;
  payload?: unknown;
  priority?: number;
  progress: JobProgress | null;
  result?: unknown;
  error_message?: string | null;
  logs?: string | null;
  created_by: string | null;
  user_role: string | null;
  user_email: string | null;
  worker_id?: string | null;
  retry_count: number;
  max_retries: number;
  scheduled_at?: string | null;
  created_at: string;
  started_at?: string | null;
  completed_at?: string | null;
  last_progress_at?: string | null;
  [key: string]: unknown;
}

/** One captured log line of a job execution. */
export interface JobLogLine {
  line_number: number;
  level: "debug" | "info" | "warn" | "error";
  message: string;
  /** ISO time; the REST API may call it `created_at`, realtime `timestamp`. */
  timestamp?: string;
  created_at?: string;
  [key: string]: unknown;
}

/** Counts per status from the admin stats endpoint. */
export interface JobStats {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  total: number;
  avg_duration_ms: number | null;
  [key: string]: unknown;
}

/** A worker process registered with the server. */
export interface JobWorker {
  id: string;
  name: string;
  hostname: string;
  pid: number | null;
  status: string;
  current_job_count: number;
  /** Alias of `current_job_count`, as the spec's admin sample reads it. */
  current_jobs: number;
  max_concurrent_jobs: number;
  last_heartbeat_at: string;
  started_at: string;
  [key: string]: unknown;
}

/** A deployed job function. */
export interface JobFunction {
  id?: string;
  name: string;
  namespace: string;
  description?: string | null;
  code?: string;
  version?: number;
  enabled: boolean;
  schedule?: string | null;
  timeout_seconds?: number;
  max_retries?: number;
  require_roles?: string[];
  source?: string;
  created_at?: string;
  updated_at?: string;
  [key: string]: unknown;
}

/** The outcome of `admin.jobs.sync()`. */
export interface SyncResult {
  summary: {
    created: number;
    updated: number;
    deleted: number;
    unchanged: number;
    errors: number;
  };
  [key: string]: unknown;
}

/**
 * Why a call failed. `status` is the HTTP status, or 0 when no response arrived
 * (network error, aborted, timeout); `code` is the server's snake_case code or one of the
 * SDK's own: `network_error`, `invalid_response`, `timeout`, `realtime_unavailable`.
 */
export class FluxbaseError extends Error {
  /** HTTP status, 0 when the server was not reached. */
  readonly status: number;
  /** Machine-readable reason, e.g. `not_found`, `forbidden`, `network_error`. */
  readonly code: string;
  /** Extra information the server sent along, if any. */
  readonly details?: unknown;

  constructor(message: string, status: number, code: string, details?: unknown) {
    super(message);
    this.name = "FluxbaseError";
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** A plain object for logging and `JSON.stringify`. */
  toJSON(): { message: string; status: number; code: string; details?: unknown } {
    return { message: this.message, status: this.status, code: this.code, details: this.details };
  }
}

/**
 * Every SDK call resolves to this and never rejects on HTTP or network errors:
 * either `data` is set and `error` is null, or `data` is null and `error` says why.
 */
export type FluxbaseResponse<T> =
  | { data: T; error: null }
  | { data: null; error: FluxbaseError };

/** A list result: `data` is the array of this page, `count` the total that match. */
export type FluxbaseListResponse<T> =
  | { data: T[]; error: null; count?: number }
  | { data: null; error: FluxbaseError; count?: undefined };

/** A `fetch`-compatible function; pass your own to route requests (job isolates do). */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
