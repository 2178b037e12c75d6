/**
 * Submitting follow-up jobs: each run handles one batch and submits the next one as the
 * same user.
 * @fluxbase:description Processes batches one job at a time
 */
import type { FluxbaseClient, JobUtils } from "./_shared/types.ts";

export async function handler(
  _req: Request,
  fluxbase: FluxbaseClient,
  _fluxbaseService: FluxbaseClient,
  job: JobUtils,
) {
  const context = job.getJobContext();
  const { total_batches, current_batch = 0 } = context.payload;

  job.reportProgress(0, `Processing batch ${current_batch + 1}/${total_batches}`);
  await new Promise((resolve) => setTimeout(resolve, 10));
  job.reportProgress(100, `Batch ${current_batch + 1} complete`);

  let next: string | null = null;
  if (current_batch + 1 < total_batches) {
    const { data, error } = await fluxbase.jobs.submit("process-batch", {
      total_batches,
      current_batch: current_batch + 1,
    });
    if (error) throw new Error(`Cannot submit the next batch: ${error.message}`);
    next = data!.id;
  }

  return { batch: current_batch, remaining: total_batches - current_batch - 1, next };
}
