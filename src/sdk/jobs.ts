/** `client.jobs`: submit, read, list, cancel and retry the caller's own jobs. */
import { type HttpClient, mapData, seg } from "./http.ts";
import {
  FluxbaseError,
  type FluxbaseListResponse,
  type FluxbaseResponse,
  type Job,
  type JobLogLine,
  type JobStatus,
} from "./types.ts";

/** Options of `jobs.submit()`. */
export interface SubmitOptions {
  /** Namespace of the job function; the server's default is `"default"`. */
  namespace?: string;
  /** Higher runs first; default 0. */
  priority?: number;
  /** Do not run before this time. */
  scheduledAt?: Date | string;
  /** Submit as this user id (service role only). */
  onBehalfOf?: string;
}

/** Filters of `jobs.list()`. */
export interface ListJobsOptions {
  status?: JobStatus;
  namespace?: string;
  jobName?: string;
  limit?: number;
  offset?: number;
}

/** Options of `jobs.waitFor()`. */
export interface WaitForOptions {
  /** Give up after this long (default 60 000 ms); the error code is then `timeout`. */
  timeoutMs?: number;
  /** Polling interval when realtime is not used (default 1 000 ms). */
  intervalMs?: number;
  /** Use the realtime feed when a WebSocket is available (default true). */
  realtime?: boolean;
  /** Called with every state seen before the final one. */
  onUpdate?: (job: Job) => void;
}

/** Watches one job over realtime; supplied by the client so `jobs` stays HTTP-only. */
export type JobWatcher = (
  jobId: string,
  onJob: (job: Job) => void,
) => { ready: Promise<boolean>; stop(): void } | null;

const FINAL: readonly JobStatus[] = ["completed", "failed", "cancelled"];

/** True for `completed`, `failed` and `cancelled`. */
export function isFinalStatus(status: string): boolean {
  return (FINAL as readonly string[]).includes(status);
}

export class JobsClient {
  readonly #http: HttpClient;
  readonly #watch: JobWatcher | null;

  constructor(http: HttpClient, watch: JobWatcher | null = null) {
    this.#http = http;
    this.#watch = watch;
  }

  /**
   * Queues a job; `data` is the new job, status `"pending"`.
   *
   * @example
   * ```ts
   * const { data: job, error } = await client.jobs.submit("process-data", { items: [1, 2, 3] });
   * if (error) console.error("Failed to submit job:", error.message);
   * else console.log("Job submitted:", job.id, job.status); // "pending"
   * ```
   */
  submit(
    name: string,
    payload?: unknown,
    opts: SubmitOptions = {},
  ): Promise<FluxbaseResponse<Job>> {
    const body: Record<string, unknown> = { job_name: name };
    if (payload !== undefined) body.payload = payload;
    if (opts.namespace !== undefined) body.namespace = opts.namespace;
    if (opts.priority !== undefined) body.priority = opts.priority;
    if (opts.scheduledAt !== undefined) {
      body.scheduled_at = opts.scheduledAt instanceof Date
        ? opts.scheduledAt.toISOString()
        : opts.scheduledAt;
    }
    if (opts.onBehalfOf !== undefined) body.on_behalf_of = opts.onBehalfOf;
    return this.#http.request<Job>("POST", "/api/v1/jobs/submit", { body });
  }

  /**
   * Reads one of your jobs (another user's job is `not_found`).
   *
   * @example
   * ```ts
   * const { data: job } = await client.jobs.get(jobId);
   * if (job) console.log(job.status, job.progress?.percent, job.result);
   * ```
   */
  get(id: string): Promise<FluxbaseResponse<Job>> {
    return this.#http.request<Job>("GET", `/api/v1/jobs/${seg(id)}`);
  }

  /**
   * Lists your jobs, newest first; `data` is the array, `count` the total that match.
   *
   * @example
   * ```ts
   * const { data: jobs } = await client.jobs.list({ status: "running", limit: 20, offset: 0 });
   * jobs?.forEach((job) => console.log(`${job.job_name}: ${job.status}`));
   * ```
   */
  async list(opts: ListJobsOptions = {}): Promise<FluxbaseListResponse<Job>> {
    const r = await this.#http.request<{ jobs: Job[]; total?: number }>("GET", "/api/v1/jobs", {
      query: {
        status: opts.status,
        namespace: opts.namespace,
        job_name: opts.jobName,
        limit: opts.limit,
        offset: opts.offset,
      },
    });
    if (r.error) return { data: null, error: r.error };
    return { data: r.data.jobs ?? [], error: null, count: r.data.total };
  }

  /**
   * Cancels a pending or running job; a finished job gives a `conflict` error.
   *
   * @example
   * ```ts
   * const { error } = await client.jobs.cancel(jobId);
   * if (!error) console.log("Job cancelled");
   * ```
   */
  cancel(id: string): Promise<FluxbaseResponse<Job>> {
    return this.#http.request<Job>("POST", `/api/v1/jobs/${seg(id)}/cancel`);
  }

  /**
   * Retries a failed or cancelled job; `data` is the new job.
   *
   * @example
   * ```ts
   * const { data: newJob, error } = await client.jobs.retry(jobId);
   * if (newJob) console.log("Retry job ID:", newJob.id);
   * ```
   */
  retry(id: string): Promise<FluxbaseResponse<Job>> {
    return this.#http.request<Job>("POST", `/api/v1/jobs/${seg(id)}/retry`);
  }

  /**
   * Reads a job's captured log lines, optionally only those after line `afterLine`.
   *
   * @example
   * ```ts
   * const { data: lines } = await client.jobs.getLogs(jobId);
   * lines?.forEach((l) => console.log(l.line_number, l.level, l.message));
   * ```
   */
  async getLogs(id: string, afterLine?: number): Promise<FluxbaseResponse<JobLogLine[]>> {
    const r = await this.#http.request<{ logs: JobLogLine[] }>(
      "GET",
      `/api/v1/jobs/${seg(id)}/logs`,
      { query: { after_line: afterLine } },
    );
    return mapData(r, (d) => d.logs ?? []);
  }

  /**
   * Resolves when the job is completed, failed or cancelled, with its final state.
   * Uses the realtime feed when a WebSocket is available (with a slow poll as a safety net),
   * otherwise polls. A timeout gives an error with code `timeout`.
   *
   * @example
   * ```ts
   * const { data: job } = await client.jobs.submit("process-data", { items: [1, 2] });
   * const { data: done, error } = await client.jobs.waitFor(job!.id, { timeoutMs: 30_000 });
   * if (done?.status === "completed") console.log("Result:", done.result);
   * ```
   */
  waitFor(id: string, opts: WaitForOptions = {}): Promise<FluxbaseResponse<Job>> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const intervalMs = opts.intervalMs ?? 1_000;
    return new Promise((resolve) => {
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let lastSeen: Job | null = null;
      const watcher = opts.realtime === false ? null : this.#watch?.(id, (job) => see(job)) ?? null;
      const finish = (r: FluxbaseResponse<Job>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(deadline);
        watcher?.stop();
        resolve(r);
      };
      const see = (job: Job) => {
        if (settled || job.id !== id) return;
        if (isFinalStatus(job.status)) return finish({ data: job, error: null });
        const changed = !lastSeen || lastSeen.status !== job.status ||
          JSON.stringify(lastSeen.progress) !== JSON.stringify(job.progress);
        lastSeen = job;
        if (changed) opts.onUpdate?.(job);
      };
      const deadline = setTimeout(() => {
        finish({
          data: null,
          error: new FluxbaseError(
            `Job "${id}" did not finish within ${timeoutMs} ms (last status: ${
              lastSeen?.status ?? "unknown"
            })`,
            0,
            "timeout",
          ),
        });
      }, timeoutMs);
      // With realtime the poll only covers events missed around the subscription.
      const pollEvery = watcher ? Math.max(intervalMs * 5, 5_000) : intervalMs;
      const poll = async () => {
        if (settled) return;
        const r = await this.get(id);
        if (settled) return;
        if (r.error) {
          // A missing job or a rejected token will not fix itself; a network blip may.
          if (r.error.status >= 400 && r.error.status < 500) return finish(r);
        } else {
          see(r.data);
        }
        if (!settled) timer = setTimeout(poll, pollEvery);
      };
      if (watcher) {
        // Read once after the subscription is live, so a change between submit and ack is seen.
        watcher.ready.then(() => poll());
      } else {
        poll();
      }
    });
  }
}
