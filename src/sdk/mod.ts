/**
 * The Fluxbase Jobs SDK: submit background jobs, follow their progress live, manage them
 * as an admin. Runs on Deno, Node 20+ and browsers; depends only on `fetch` and `WebSocket`.
 *
 * Every call resolves to `{ data, error }` and never rejects on HTTP or network errors.
 *
 * @example
 * ```ts
 * import { createClient } from "@fluxbase/sdk";
 *
 * const client = createClient("http://localhost:8080", { apiKey: "your-anon-key" });
 * const { data: job, error } = await client.jobs.submit("process-data", { items: [1, 2, 3] });
 * if (error) console.error(error.status, error.code, error.message);
 * else console.log("Job submitted:", job.id);
 * ```
 *
 * @module
 */
export { AuthClient, type ClientOptions, createClient, FluxbaseClient } from "./client.ts";
export {
  isFinalStatus,
  JobsClient,
  type ListJobsOptions,
  type SubmitOptions,
  type WaitForOptions,
} from "./jobs.ts";
export {
  AdminJobsClient,
  type AdminListJobsOptions,
  type CreateFunctionInput,
  type SyncInput,
} from "./admin.ts";
export {
  type ConnectionState,
  type Gap,
  RealtimeClient,
  type RealtimeOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./realtime.ts";
export {
  type ChangeCallback,
  type ChangeEvent,
  type ChannelStatus,
  type ChannelStatusInfo,
  type PostgresChangesFilter,
  type RealtimeChangePayload,
  RealtimeChannel,
} from "./channel.ts";
export {
  type FetchLike,
  FluxbaseError,
  type FluxbaseListResponse,
  type FluxbaseResponse,
  type Job,
  type JobFunction,
  type JobLogLine,
  type JobProgress,
  type JobStats,
  type JobStatus,
  type JobWorker,
  type SyncResult,
} from "./types.ts";
