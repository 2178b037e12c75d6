/**
 * Generate system-wide report (only admins can submit it)
 * @fluxbase:require-role admin
 * @fluxbase:timeout 600
 */
import type { FluxbaseClient, JobUtils } from "./_shared/types.ts";

export async function handler(
  _req: Request,
  _fluxbase: FluxbaseClient,
  fluxbaseService: FluxbaseClient,
  job: JobUtils,
) {
  const context = job.getJobContext();
  console.log("Admin:", context.user?.email);

  job.reportProgress(25, "Fetching data...");
  // The service client bypasses row-level security: statistics over every user's jobs.
  const { data: stats, error } = await fluxbaseService.admin.jobs.getStats();
  if (error) throw new Error(`Cannot read job statistics: ${error.message}`);

  job.reportProgress(75, "Generating report...");
  const report = { generated_at: new Date().toISOString(), stats };

  job.reportProgress(100, "Complete");
  return { report };
}
