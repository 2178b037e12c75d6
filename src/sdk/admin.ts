/** `client.admin.jobs`: every user's jobs, statistics, workers and job functions. */
import { type HttpClient, mapData, seg } from "./http.ts";
import type {
  FluxbaseListResponse,
  FluxbaseResponse,
  Job,
  JobFunction,
  JobStats,
  JobStatus,
  JobWorker,
  SyncResult,
} from "./types.ts";

/** Filters of `admin.jobs.listJobs()`. */
export interface AdminListJobsOptions {
  status?: JobStatus;
  namespace?: string;
  jobName?: string;
  workerId?: string;
  createdBy?: string;
  limit?: number;
  offset?: number;
}

/** A function to create from code. */
export interface CreateFunctionInput {
  name: string;
  namespace?: string;
  code: string;
  enabled?: boolean;
  description?: string;
}

/** Input of `admin.jobs.sync()`: a directory on the server (`path`) or files you send. */
export interface SyncInput {
  namespace?: string;
  /** A directory under the server's `FLUXBASE_JOBS_DIR`. */
  path?: string;
  /** Functions to deploy by name and code, instead of `path`. */
  jobs?: Array<{ name: string; code: string }>;
  /** Delete functions of the namespace that are not in the sync. */
  deleteMissing?: boolean;
  /** Report what would change without changing anything. */
  dryRun?: boolean;
}

const BASE = "/api/v1/admin/jobs";

export class AdminJobsClient {
  readonly #http: HttpClient;

  constructor(http: HttpClient) {
    this.#http = http;
  }

  /**
   * Lists jobs of all users; `data` is the array, `count` the total that match.
   *
   * @example
   * ```ts
   * const { data: allJobs } = await client.admin.jobs.listJobs({ status: "running", namespace: "default" });
   * ```
   */
  async listJobs(
    filters: AdminListJobsOptions = {},
  ): Promise<FluxbaseListResponse<Job>> {
    const r = await this.#http.request<{ jobs: Job[]; total?: number }>("GET", `${BASE}/queue`, {
      query: {
        status: filters.status,
        namespace: filters.namespace,
        job_name: filters.jobName,
        worker_id: filters.workerId,
        created_by: filters.createdBy,
        limit: filters.limit,
        offset: filters.offset,
      },
    });
    if (r.error) return { data: null, error: r.error };
    return { data: r.data.jobs ?? [], error: null, count: r.data.total };
  }

  /**
   * Reads any job.
   *
   * @example
   * ```ts
   * const { data: job } = await client.admin.jobs.getJob(jobId);
   * ```
   */
  getJob(id: string): Promise<FluxbaseResponse<Job>> {
    return this.#http.request<Job>("GET", `${BASE}/queue/${seg(id)}`);
  }

  /**
   * Counts jobs per status, optionally of one namespace.
   *
   * @example
   * ```ts
   * const { data: stats } = await client.admin.jobs.getStats("default");
   * console.log("Pending:", stats?.pending, "Running:", stats?.running);
   * ```
   */
  getStats(namespace?: string): Promise<FluxbaseResponse<JobStats>> {
    return this.#http.request<JobStats>("GET", `${BASE}/stats`, { query: { namespace } });
  }

  /**
   * Lists registered workers, each with `current_job_count` and its alias `current_jobs`.
   *
   * @example
   * ```ts
   * const { data: workers } = await client.admin.jobs.listWorkers();
   * workers?.forEach((w) => console.log(`Worker ${w.id}: ${w.current_jobs} jobs`));
   * ```
   */
  async listWorkers(): Promise<FluxbaseResponse<JobWorker[]>> {
    const r = await this.#http.request<{ workers: JobWorker[] }>("GET", `${BASE}/workers`);
    return mapData(r, (d) =>
      (d.workers ?? []).map((w) => ({
        ...w,
        current_jobs: w.current_jobs ?? w.current_job_count,
      })));
  }

  /**
   * Lists the namespaces that have functions or jobs.
   *
   * @example
   * ```ts
   * const { data: namespaces } = await client.admin.jobs.listNamespaces();
   * ```
   */
  async listNamespaces(): Promise<FluxbaseResponse<string[]>> {
    const r = await this.#http.request<{ namespaces: string[] }>("GET", `${BASE}/namespaces`);
    return mapData(r, (d) => d.namespaces ?? []);
  }

  /**
   * Stops a running job now (no grace period); it ends as `cancelled`.
   *
   * @example
   * ```ts
   * await client.admin.jobs.terminate(jobId);
   * ```
   */
  terminate(id: string): Promise<FluxbaseResponse<Job>> {
    return this.#http.request<Job>("POST", `${BASE}/queue/${seg(id)}/terminate`);
  }

  /**
   * Cancels any user's pending or running job.
   *
   * @example
   * ```ts
   * const { error } = await client.admin.jobs.cancel(jobId);
   * ```
   */
  cancel(id: string): Promise<FluxbaseResponse<Job>> {
    return this.#http.request<Job>("POST", `${BASE}/queue/${seg(id)}/cancel`);
  }

  /**
   * Retries any user's failed or cancelled job; `data` is the new job.
   *
   * @example
   * ```ts
   * const { data: newJob } = await client.admin.jobs.retry(jobId);
   * ```
   */
  retry(id: string): Promise<FluxbaseResponse<Job>> {
    return this.#http.request<Job>("POST", `${BASE}/queue/${seg(id)}/retry`);
  }

  /**
   * Submits a copy of any job (whatever its state) as a new pending job.
   *
   * @example
   * ```ts
   * const { data: copy } = await client.admin.jobs.resubmit(jobId);
   * ```
   */
  resubmit(id: string): Promise<FluxbaseResponse<Job>> {
    return this.#http.request<Job>("POST", `${BASE}/queue/${seg(id)}/resubmit`);
  }

  /**
   * Creates a job function from code (deployment method 1 of the spec).
   *
   * @example
   * ```ts
   * const { data, error } = await client.admin.jobs.create({
   *   name: "process-data", namespace: "default", code, enabled: true,
   * });
   * ```
   */
  create(input: CreateFunctionInput): Promise<FluxbaseResponse<JobFunction>> {
    return this.#http.request<JobFunction>("POST", `${BASE}/functions`, { body: input });
  }

  /**
   * Changes a function: new `code`, `enabled`, `description`, ...
   *
   * @example
   * ```ts
   * await client.admin.jobs.update("default", "process-data", { enabled: false });
   * ```
   */
  update(
    namespace: string,
    name: string,
    changes: Partial<CreateFunctionInput> & Record<string, unknown>,
  ): Promise<FluxbaseResponse<JobFunction>> {
    return this.#http.request<JobFunction>(
      "PUT",
      `${BASE}/functions/${seg(namespace)}/${seg(name)}`,
      { body: changes },
    );
  }

  /**
   * Deletes a function.
   *
   * @example
   * ```ts
   * const { error } = await client.admin.jobs.delete("default", "process-data");
   * ```
   */
  delete(namespace: string, name: string): Promise<FluxbaseResponse<unknown>> {
    return this.#http.request<unknown>(
      "DELETE",
      `${BASE}/functions/${seg(namespace)}/${seg(name)}`,
    );
  }

  /**
   * Lists functions, optionally of one namespace.
   *
   * @example
   * ```ts
   * const { data: fns } = await client.admin.jobs.list("default");
   * fns?.forEach((f) => console.log(f.name, f.enabled));
   * ```
   */
  async list(namespace?: string): Promise<FluxbaseResponse<JobFunction[]>> {
    const r = await this.#http.request<{ functions: JobFunction[] }>("GET", `${BASE}/functions`, {
      query: { namespace },
    });
    return mapData(r, (d) => d.functions ?? []);
  }

  /**
   * Reads one function, with its code.
   *
   * @example
   * ```ts
   * const { data: fn } = await client.admin.jobs.get("default", "process-data");
   * ```
   */
  get(namespace: string, name: string): Promise<FluxbaseResponse<JobFunction>> {
    return this.#http.request<JobFunction>(
      "GET",
      `${BASE}/functions/${seg(namespace)}/${seg(name)}`,
    );
  }

  /**
   * Deploys every function of a server directory, or the functions you pass, in one go
   * (deployment method 3 of the spec). `data.summary` counts what changed.
   *
   * @example
   * ```ts
   * const { data } = await client.admin.jobs.sync({ namespace: "default", path: "./jobs" });
   * console.log(`Created: ${data?.summary.created}`);
   * ```
   */
  sync(input: SyncInput = {}): Promise<FluxbaseResponse<SyncResult>> {
    const body: Record<string, unknown> = {
      namespace: input.namespace ?? "default",
      options: { delete_missing: input.deleteMissing ?? false, dry_run: input.dryRun ?? false },
    };
    if (input.path !== undefined) body.path = input.path;
    if (input.jobs !== undefined) body.jobs = input.jobs;
    return this.#http.request<SyncResult>("POST", `${BASE}/sync`, { body });
  }
}
