/** How a supervisor starts a worker process, shared by both sides. */
import type { Config } from "../config.ts";

/** Exit code of a worker process that must be replaced at once (stuck isolate, declared dead). */
export const RECYCLE_EXIT_CODE = 75;

/**
 * The environment variable carrying a child's identity and configuration. The FLUXBASE_AUTH_
 * prefix keeps it out of every job's environment view (isolate/env.ts), and the worker
 * deletes it from its own environment before any job runs.
 */
export const WORKER_BOOT_ENV = "FLUXBASE_AUTH_WORKER_BOOT";

export interface WorkerBoot {
  id: string;
  name: string;
  config: Config;
  databaseUrl: string;
  jwtSecret: string;
}

/** Reads and removes the supervisor's boot record, if this process was started by one. */
export function takeWorkerBoot(): WorkerBoot | null {
  const raw = Deno.env.get(WORKER_BOOT_ENV);
  if (!raw) return null;
  Deno.env.delete(WORKER_BOOT_ENV);
  return JSON.parse(raw) as WorkerBoot;
}
