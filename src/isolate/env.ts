/**
 * What `Deno.env` shows a job. The spec promises the job's own FLUXBASE_JOB_* values, FLUXBASE_URL
 * and "custom FLUXBASE_* variables from your server environment ... (except blocked secrets like
 * JWT keys)", and its sample reads FLUXBASE_EXTERNAL_API_KEY. So a name ending in _KEY is not
 * blocked as such (that would break the sample): blocked are the server's own credentials, by
 * name and by unmistakable words (SECRET, PASSWORD, JWT, ...). An operator who wants a job to have
 * a credential names it FLUXBASE_<SOMETHING>_API_KEY or _TOKEN; one who does not, uses a secret
 * word or keeps the FLUXBASE_ prefix off.
 */

/** Variables the server itself reads for credentials and database access. */
const BLOCKED_NAMES = new Set([
  "FLUXBASE_AUTH_JWT_SECRET",
  "FLUXBASE_JWT_SECRET",
  "FLUXBASE_DATABASE_URL",
  "FLUXBASE_DB_URL",
  "FLUXBASE_SERVICE_KEY",
  "FLUXBASE_SERVICE_ROLE_KEY",
  "FLUXBASE_ANON_KEY",
  "FLUXBASE_ENCRYPTION_KEY",
  "FLUXBASE_SECRETS_KEY",
  "FLUXBASE_MASTER_KEY",
  "DATABASE_URL",
]);

/** Whole words of a variable name (split on "_") that mark a credential. */
const BLOCKED_WORDS = new Set(["SECRET", "SECRETS", "PASSWORD", "PASSWD", "PWD", "JWT", "DSN"]);

/** Name endings of the platform's own keys (the external API keys of jobs stay visible). */
const BLOCKED_SUFFIXES = [
  "_SERVICE_KEY",
  "_SERVICE_ROLE_KEY",
  "_ANON_KEY",
  "_ENCRYPTION_KEY",
  "_PRIVATE_KEY",
  "_SIGNING_KEY",
  "_MASTER_KEY",
  "_DATABASE_URL",
  "_DB_URL",
];

/** Prefixes of the server's own settings that hold connection strings or auth configuration. */
const BLOCKED_PREFIXES = [
  "FLUXBASE_AUTH_",
  "FLUXBASE_DATABASE_",
  "FLUXBASE_DB_",
  "FLUXBASE_POSTGRES_",
];

/** True for a variable a job must never see, whatever its grants. */
export function isBlockedEnvName(name: string): boolean {
  const upper = name.toUpperCase();
  if (BLOCKED_NAMES.has(upper)) return true;
  if (upper.split("_").some((word) => BLOCKED_WORDS.has(word))) return true;
  if (BLOCKED_SUFFIXES.some((suffix) => upper.endsWith(suffix))) return true;
  return BLOCKED_PREFIXES.some((prefix) => upper.startsWith(prefix));
}

export interface JobEnvInput {
  jobId: string;
  jobName: string;
  namespace: string;
  cancelled?: boolean;
}

/**
 * The per-job environment view (`JobRun.env`): the server's custom FLUXBASE_* variables minus
 * blocked ones, then the job's own values, which nothing in the server environment can override.
 */
export function buildJobEnv(
  serverEnv: Record<string, string>,
  job: JobEnvInput,
  publicUrl: string,
): Record<string, string> {
  return withJobValues(visibleServerEnv(serverEnv), job, publicUrl);
}

/** The server's custom FLUXBASE_* variables a job may see (filter once, use for every job). */
export function visibleServerEnv(serverEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(serverEnv)) {
    if (!name.startsWith("FLUXBASE_") || name.startsWith("FLUXBASE_JOB_")) continue;
    if (isBlockedEnvName(name)) continue;
    env[name] = value;
  }
  return env;
}

/** `visible` (from visibleServerEnv) plus the job's own values. */
export function withJobValues(
  visible: Record<string, string>,
  job: JobEnvInput,
  publicUrl: string,
): Record<string, string> {
  return {
    ...visible,
    FLUXBASE_URL: publicUrl,
    FLUXBASE_JOB_ID: job.jobId,
    FLUXBASE_JOB_NAME: job.jobName,
    FLUXBASE_JOB_NAMESPACE: job.namespace,
    FLUXBASE_JOB_CANCELLED: job.cancelled ? "true" : "false",
  };
}
