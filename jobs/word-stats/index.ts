/**
 * A directory function: a sibling module, a `_shared/` module and an npm package.
 * @fluxbase:description Counts words and reports when the next daily run would be
 */
// Job code has no deno.json of its own: npm packages are imported by full specifier.
// deno-lint-ignore no-import-prefix
import { Cron } from "npm:croner@11.0.0";
import { countWords } from "./count.ts";
import type { FluxbaseClient, JobUtils } from "../_shared/types.ts";

export function handler(
  req: Request,
  _fluxbase: FluxbaseClient,
  _fluxbaseService: FluxbaseClient,
  job: JobUtils,
) {
  const { text = "" } = job.getJobPayload() ?? {};
  const top = [...countWords(text)].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return {
    method: req.method,
    top: top.slice(0, 3),
    nextDailyRun: new Cron("0 2 * * *", { timezone: "UTC" }).nextRun()?.toISOString() ?? null,
  };
}
