/**
 * A long job that stops early when cancelled (checks `job.checkCancellation()` per batch).
 * @fluxbase:timeout 600
 * @fluxbase:progress-timeout 60
 * @fluxbase:description Imports records in batches; cancellable
 */
import type { FluxbaseClient, JobUtils } from "./_shared/types.ts";

export async function handler(
  _req: Request,
  _fluxbase: FluxbaseClient,
  _fluxbaseService: FluxbaseClient,
  job: JobUtils,
) {
  const { total = 1000, batch_size = 100, delay_ms = 100 } = job.getJobPayload() ?? {};
  let processed = 0;

  for (let i = 0; i < total; i += batch_size) {
    if (job.checkCancellation()) {
      return { cancelled: true, processed };
    }
    await new Promise((resolve) => setTimeout(resolve, delay_ms));
    processed = Math.min(total, i + batch_size);
    job.reportProgress(Math.floor((processed / total) * 100), `Imported ${processed}/${total}`);
  }

  return { success: true, imported: processed };
}
