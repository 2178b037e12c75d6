/** The `job` argument of a handler: progress, cancellation, context and payload of one run. */
import type { JobRun, ProgressUpdate } from "./types.ts";

export interface JobContext {
  job_id: string;
  job_name: string;
  namespace: string;
  retry_count: number;
  payload: unknown;
  user: { id: string; email: string | null; role: string } | null;
}

export interface JobUtils {
  reportProgress(percent: number, message?: string, data?: unknown): void;
  /** Synchronous: reads a flag the host sets from another thread, so it works in a tight loop. */
  checkCancellation(): boolean;
  isCancelled(): Promise<boolean>;
  getJobContext(): JobContext;
  getJobPayload(): unknown;
}

export function createJobUtils(
  job: JobRun,
  cancelled: () => boolean,
  report: (progress: ProgressUpdate) => void,
): JobUtils {
  return {
    reportProgress(percent: number, message?: string, data?: unknown) {
      if (
        typeof percent !== "number" || !Number.isFinite(percent) || percent < 0 || percent > 100
      ) {
        throw new RangeError(
          `reportProgress(): percent must be a number from 0 to 100, got ${String(percent)}`,
        );
      }
      if (message !== undefined && message !== null && typeof message !== "string") {
        throw new TypeError(`reportProgress(): message must be a string, got ${typeof message}`);
      }
      let copy: unknown = null;
      if (data !== undefined) {
        try {
          copy = JSON.parse(JSON.stringify(data));
        } catch (e) {
          throw new TypeError(
            `reportProgress(): data is not JSON-serializable: ${(e as Error).message}`,
          );
        }
      }
      // The spec's record types message as a string: a report without one is "".
      report({ percent, message: message ?? "", data: copy });
    },
    checkCancellation: cancelled,
    isCancelled: () => Promise.resolve(cancelled()),
    getJobContext: () => ({
      job_id: job.jobId,
      job_name: job.jobName,
      namespace: job.namespace,
      retry_count: job.retryCount,
      payload: job.payload,
      user: job.user ? { ...job.user } : null,
    }),
    getJobPayload: () => job.payload,
  };
}
