/**
 * Process user data (the spec's basic job function)
 * @fluxbase:timeout 300
 * @fluxbase:description Processes user-specific data items
 */
import type { FluxbaseClient, JobUtils } from "./_shared/types.ts";

// Stands for real work: long enough that a client who subscribes right after submitting (as
// the spec's realtime sample does) sees every progress update.
async function processItem(item: unknown): Promise<unknown> {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return item;
}

export async function handler(
  _req: Request,
  _fluxbase: FluxbaseClient,
  _fluxbaseService: FluxbaseClient,
  job: JobUtils,
) {
  const context = job.getJobContext();
  const { items } = context.payload;

  // User context is automatically available
  console.log("Running for user:", context.user?.email);

  for (let i = 0; i < items.length; i++) {
    await processItem(items[i]);
    const percent = Math.floor(((i + 1) / items.length) * 100);
    job.reportProgress(percent, `Processed ${i + 1}/${items.length}`);
  }

  return { success: true, processed: items.length };
}
