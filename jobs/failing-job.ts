/**
 * Always fails: shows retries and how an error reaches `error_message` and the logs.
 * @fluxbase:max-retries 2
 * @fluxbase:description Fails on purpose
 */
import type { FluxbaseClient, JobUtils } from "./_shared/types.ts";

export function handler(
  _req: Request,
  _fluxbase: FluxbaseClient,
  _fluxbaseService: FluxbaseClient,
  job: JobUtils,
) {
  const { retry_count } = job.getJobContext();
  console.warn(`Attempt ${retry_count + 1} is about to fail`);
  throw new Error(`Failed on purpose (attempt ${retry_count + 1})`);
}
