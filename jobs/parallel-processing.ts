/**
 * Parallel processing: every item at once, progress as each one finishes.
 * @fluxbase:description Squares numbers in parallel
 */
import type { FluxbaseClient, JobUtils } from "./_shared/types.ts";

async function processItem(item: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 5 * (item % 3)));
  return item * item;
}

export async function handler(
  _req: Request,
  _fluxbase: FluxbaseClient,
  _fluxbaseService: FluxbaseClient,
  job: JobUtils,
) {
  const { items } = job.getJobPayload();
  let finished = 0;

  const results = await Promise.all(
    items.map(async (item: number) => {
      const result = await processItem(item);
      finished++;
      const progress = Math.floor((finished / items.length) * 100);
      job.reportProgress(progress, `Processed ${finished}/${items.length}`);
      return result;
    }),
  );

  return { success: true, results };
}
