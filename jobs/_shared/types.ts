/**
 * Types of a job handler's arguments, for the example jobs. The runtime passes the SDK's
 * `FluxbaseClient` (src/sdk); only the calls these examples make are spelled out here, so the
 * jobs directory stays self-contained (a job may not import files outside it).
 */
export interface JobContext {
  job_id: string;
  job_name: string;
  namespace: string;
  retry_count: number;
  // deno-lint-ignore no-explicit-any
  payload: any;
  user: { id: string; email: string | null; role: string } | null;
}

export interface JobUtils {
  reportProgress(percent: number, message?: string, data?: unknown): void;
  checkCancellation(): boolean;
  isCancelled(): Promise<boolean>;
  getJobContext(): JobContext;
  // deno-lint-ignore no-explicit-any
  getJobPayload(): any;
}

type Result<T> = Promise<{ data: T | null; error: { message: string } | null }>;

export interface FluxbaseClient {
  jobs: {
    submit(name: string, payload?: unknown): Result<{ id: string; status: string }>;
    get(id: string): Result<{ id: string; status: string }>;
  };
  admin: { jobs: { getStats(namespace?: string): Result<Record<string, unknown>> } };
}
