/**
 * Cleanup old data daily at 2 AM (the spec's scheduled job)
 * @fluxbase:schedule 0 2 * * *
 * @fluxbase:schedule-params {"retention_days": 30}
 * @fluxbase:require-role admin
 * @fluxbase:timeout 1800
 */
import type { FluxbaseClient, JobUtils } from "./_shared/types.ts";

export function handler(
  _req: Request,
  _fluxbase: FluxbaseClient,
  _fluxbaseService: FluxbaseClient,
  job: JobUtils,
) {
  const { retention_days = 30 } = job.getJobPayload() ?? {};
  job.reportProgress(10, "Starting cleanup...");

  const cutoffDate = new Date();
  cutoffDate.setDate(cutoffDate.getDate() - retention_days);

  job.reportProgress(100, "Cleanup complete");
  return { cutoff: cutoffDate.toISOString(), deleted: 0 };
}
