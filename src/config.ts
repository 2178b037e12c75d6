/**
 * Configuration: `fluxbase.yaml` (optional) overridden by `FLUXBASE_*` environment variables,
 * validated in one place. Every problem names the key, the value and what is allowed, and
 * start-up stops on the first file that has any.
 */
import { parse as parseYaml } from "yaml";

export type WorkerMode = "embedded" | "standalone" | "disabled";

export interface JobsConfig {
  enabled: boolean;
  dir: string;
  autoLoadOnBoot: boolean;
  workerMode: WorkerMode;
  embeddedWorkerCount: number;
  maxConcurrentPerWorker: number;
  maxConcurrentPerNamespace: number;
  pollIntervalMs: number;
  workerHeartbeatIntervalMs: number;
  workerTimeoutMs: number;
  defaultProgressTimeoutMs: number;
  defaultTimeoutSeconds: number;
  defaultMaxRetries: number;
  /** Retry delay = min(retryMaxDelay, retryBaseDelay * 2^retry_count) * (1 - jitter * random). */
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  retryJitter: number;
  /** How long a graceful shutdown waits for running jobs before stopping them. */
  shutdownGraceMs: number;
  /** Grace a cancelled running job gets to return before its isolate is terminated. */
  cancelGraceMs: number;
  /** Log lines kept per job; later lines are dropped after one truncation marker. */
  maxLogLinesPerJob: number;
  /** Old-generation cap (MB) of each V8 heap in a worker process: its own and each job isolate's. */
  workerMemoryMb: number;
  /**
   * Jobs a worker may claim beyond its free slots (graphile-worker's local queue): claims come
   * in batches and a freed slot starts its next job at once, but the claimed jobs wait for this
   * worker even when another one is idle. 0 (default) claims only what can start now.
   */
  localQueueSize: number;
}

export interface RealtimeConfig {
  maxConnectionsPerUser: number;
  /** Bytes queued for one socket before it is disconnected as a slow consumer. */
  maxBufferedBytes: number;
  pingIntervalMs: number;
}

export interface Config {
  host: string;
  port: number;
  /** Public URL of this server, shown to jobs as FLUXBASE_URL. */
  publicUrl: string;
  dataDir: string;
  /** Unset: start the embedded PostgreSQL under dataDir. */
  databaseUrl: string | null;
  /** Unset here: generated on first start and kept under dataDir (see auth/secret.ts). */
  jwtSecret: string | null;
  jwksUrl: string | null;
  jwtClockToleranceSeconds: number;
  bodyLimitBytes: number;
  /**
   * Origins browsers may call the API from ("*": any). Safe as a default because the API
   * authenticates with headers, never cookies, so a foreign page cannot borrow a session.
   */
  corsOrigins: string[];
  jobs: JobsConfig;
  realtime: RealtimeConfig;
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Kind = "bool" | "int" | "duration" | "string" | "number" | "mode" | "url";

interface Setting {
  /** Key under its yaml block. */
  key: string;
  /** Environment variables that set it, most specific first. */
  env: string[];
  kind: Kind;
  min?: number;
  max?: number;
}

const JOB_SETTINGS: Record<keyof JobsConfig, Setting> = {
  enabled: job("enabled", "bool"),
  dir: job("dir", "string"),
  autoLoadOnBoot: job("auto_load_on_boot", "bool"),
  workerMode: job("worker_mode", "mode"),
  embeddedWorkerCount: job("embedded_worker_count", "int", 0, 256),
  maxConcurrentPerWorker: job("max_concurrent_per_worker", "int", 1, 10_000),
  maxConcurrentPerNamespace: job("max_concurrent_per_namespace", "int", 1, 1_000_000),
  pollIntervalMs: job("poll_interval", "duration", 10),
  workerHeartbeatIntervalMs: job("worker_heartbeat_interval", "duration", 100),
  workerTimeoutMs: job("worker_timeout", "duration", 500),
  defaultProgressTimeoutMs: job("default_progress_timeout", "duration", 1000),
  defaultTimeoutSeconds: job("default_timeout", "int", 1, 7 * 24 * 3600),
  defaultMaxRetries: job("default_max_retries", "int", 0, 100),
  retryBaseDelayMs: job("retry_base_delay", "duration", 0),
  retryMaxDelayMs: job("retry_max_delay", "duration", 0),
  retryJitter: job("retry_jitter", "number", 0, 1),
  shutdownGraceMs: job("shutdown_grace", "duration", 0),
  cancelGraceMs: job("cancel_grace", "duration", 0),
  maxLogLinesPerJob: job("max_log_lines_per_job", "int", 1, 1_000_000),
  workerMemoryMb: job("worker_memory", "int", 64, 1_000_000),
  localQueueSize: job("local_queue_size", "int", 0, 100_000),
};

const JOB_DEFAULTS: JobsConfig = {
  enabled: true,
  dir: "./jobs",
  autoLoadOnBoot: true,
  workerMode: "embedded",
  embeddedWorkerCount: 4,
  maxConcurrentPerWorker: 5,
  maxConcurrentPerNamespace: 20,
  pollIntervalMs: 1000,
  workerHeartbeatIntervalMs: 10_000,
  workerTimeoutMs: 30_000,
  defaultProgressTimeoutMs: 300_000,
  defaultTimeoutSeconds: 300,
  defaultMaxRetries: 3,
  retryBaseDelayMs: 1000,
  retryMaxDelayMs: 3_600_000,
  retryJitter: 0.2,
  shutdownGraceMs: 30_000,
  cancelGraceMs: 2000,
  maxLogLinesPerJob: 10_000,
  workerMemoryMb: 512,
  localQueueSize: 0,
};

const REALTIME_SETTINGS: Record<keyof RealtimeConfig, Setting> = {
  maxConnectionsPerUser: realtime("max_connections_per_user", "int", 1, 1_000_000),
  maxBufferedBytes: realtime("max_buffered_bytes", "int", 1024),
  pingIntervalMs: realtime("ping_interval", "duration", 100),
};

const REALTIME_DEFAULTS: RealtimeConfig = {
  maxConnectionsPerUser: 100,
  maxBufferedBytes: 4 * 1024 * 1024,
  pingIntervalMs: 30_000,
};

const SERVER_SETTINGS = {
  host: setting("server", "host", ["FLUXBASE_HOST"], "string"),
  port: setting("server", "port", ["FLUXBASE_PORT", "PORT"], "int", 0, 65535),
  publicUrl: setting("server", "public_url", ["FLUXBASE_URL", "FLUXBASE_BASE_URL"], "url"),
  dataDir: setting("server", "data_dir", ["FLUXBASE_DATA_DIR"], "string"),
  databaseUrl: setting("database", "url", ["DATABASE_URL", "FLUXBASE_DATABASE_URL"], "url"),
  jwtSecret: setting("auth", "jwt_secret", ["FLUXBASE_AUTH_JWT_SECRET"], "string"),
  jwksUrl: setting("auth", "jwks_url", ["FLUXBASE_AUTH_JWKS_URL"], "url"),
  jwtClockToleranceSeconds: setting(
    "auth",
    "clock_tolerance",
    ["FLUXBASE_AUTH_CLOCK_TOLERANCE"],
    "int",
    0,
    300,
  ),
  bodyLimitBytes: setting("server", "body_limit", ["FLUXBASE_BODY_LIMIT"], "int", 1024),
  corsOrigins: setting("server", "cors_origins", ["FLUXBASE_CORS_ORIGINS"], "string"),
};

function setting(
  block: string,
  key: string,
  env: string[],
  kind: Kind,
  min?: number,
  max?: number,
): Setting {
  return { key: `${block}.${key}`, env, kind, min, max };
}

function job(key: string, kind: Kind, min?: number, max?: number): Setting {
  const env = [`FLUXBASE_JOBS_${key.toUpperCase()}`];
  return setting("jobs", key, env, kind, min, max);
}

function realtime(key: string, kind: Kind, min?: number, max?: number): Setting {
  return setting("realtime", key, [`FLUXBASE_REALTIME_${key.toUpperCase()}`], kind, min, max);
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "250ms", "1s", "300s", "5m", "1h" to milliseconds; a bare number means seconds. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value * 1000 : null;
  const text = value.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text) * 1000;
  const match = DURATION.exec(text);
  return match ? Math.round(Number(match[1]) * UNIT_MS[match[2]]) : null;
}

const ALLOWED: Record<Kind, string> = {
  bool: "true or false",
  int: "a whole number",
  number: "a number",
  duration: 'a duration such as "500ms", "1s", "300s", "5m"',
  string: "a non-empty string",
  mode: '"embedded", "standalone" or "disabled"',
  url: "a URL",
};

function convert(s: Setting, raw: unknown, source: string, problems: string[]): unknown {
  const fail = () => {
    let allowed = ALLOWED[s.kind];
    if (s.min !== undefined && s.max !== undefined) allowed += ` from ${s.min} to ${s.max}`;
    else if (s.min !== undefined) allowed += ` of at least ${s.min}`;
    if (s.kind === "duration" && s.min) allowed = `${allowed} (at least ${s.min} ms)`;
    problems.push(`${source}: ${JSON.stringify(raw)} is not valid; expected ${allowed}`);
    return undefined;
  };
  const text = typeof raw === "string" ? raw.trim() : raw;
  let value: unknown;
  switch (s.kind) {
    case "bool":
      if (text === true || text === "true" || text === "1") value = true;
      else if (text === false || text === "false" || text === "0") value = false;
      else return fail();
      break;
    case "int":
    case "number": {
      const n = typeof text === "number" ? text : text === "" ? NaN : Number(text);
      if (!Number.isFinite(n) || (s.kind === "int" && !Number.isInteger(n))) return fail();
      value = n;
      break;
    }
    case "duration": {
      const ms = typeof text === "string" || typeof text === "number" ? parseDuration(text) : null;
      if (ms === null) return fail();
      value = ms;
      break;
    }
    case "mode":
      if (text !== "embedded" && text !== "standalone" && text !== "disabled") return fail();
      value = text;
      break;
    case "url":
      if (typeof text !== "string" || !URL.canParse(text)) return fail();
      value = text;
      break;
    case "string":
      if (typeof text !== "string" || text === "") return fail();
      value = text;
      break;
  }
  if (typeof value === "number") {
    if ((s.min !== undefined && value < s.min) || (s.max !== undefined && value > s.max)) {
      return fail();
    }
  }
  return value;
}

export interface LoadConfigOptions {
  env?: Record<string, string>;
  /** Path of the yaml file; default FLUXBASE_CONFIG or ./fluxbase.yaml when it exists. */
  file?: string | null;
}

/** Reads, merges and validates the configuration; throws ConfigError listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? Deno.env.toObject();
  const problems: string[] = [];
  const file = options.file !== undefined ? options.file : env.FLUXBASE_CONFIG ?? defaultFile();
  const yaml = file ? readYaml(file, problems) : {};

  const known = new Set<string>();
  const read = (s: Setting): unknown => {
    known.add(s.key);
    for (const name of s.env) {
      if (env[name] !== undefined && env[name] !== "") {
        return convert(s, env[name], `environment variable ${name}`, problems);
      }
    }
    const [block, key] = s.key.split(".");
    const section = yaml[block];
    if (section && typeof section === "object" && key in section) {
      const raw = (section as Record<string, unknown>)[key];
      return convert(s, raw, `${file}: ${s.key}`, problems);
    }
    return undefined;
  };

  const jobs = { ...JOB_DEFAULTS } as Record<string, unknown>;
  for (const [field, s] of Object.entries(JOB_SETTINGS)) {
    const v = read(s);
    if (v !== undefined) jobs[field] = v;
  }
  const rt = { ...REALTIME_DEFAULTS } as Record<string, unknown>;
  for (const [field, s] of Object.entries(REALTIME_SETTINGS)) {
    const v = read(s);
    if (v !== undefined) rt[field] = v;
  }
  const server: Record<string, unknown> = {};
  for (const [field, s] of Object.entries(SERVER_SETTINGS)) server[field] = read(s);

  reportUnknownKeys(yaml, known, file, problems);
  reportUnknownEnv(env, problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const host = (server.host as string | undefined) ?? "127.0.0.1";
  const port = (server.port as number | undefined) ?? 8080;
  const jwtSecret = (server.jwtSecret as string | undefined) ?? null;
  if (jwtSecret !== null && jwtSecret.length < 32) {
    throw new ConfigError([
      "environment variable FLUXBASE_AUTH_JWT_SECRET: the secret is too short; expected at least 32 characters",
    ]);
  }
  return {
    host,
    port,
    publicUrl: (server.publicUrl as string | undefined) ??
      `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`,
    dataDir: (server.dataDir as string | undefined) ?? ".fluxbase",
    databaseUrl: (server.databaseUrl as string | undefined) ?? null,
    jwtSecret,
    jwksUrl: (server.jwksUrl as string | undefined) ?? null,
    jwtClockToleranceSeconds: (server.jwtClockToleranceSeconds as number | undefined) ?? 5,
    bodyLimitBytes: (server.bodyLimitBytes as number | undefined) ?? 1024 * 1024,
    corsOrigins: ((server.corsOrigins as string | undefined) ?? "*").split(",").map((o) => o.trim())
      .filter(Boolean),
    jobs: jobs as unknown as JobsConfig,
    realtime: rt as unknown as RealtimeConfig,
  };
}

/** A misspelt FLUXBASE_JOBS_* or FLUXBASE_REALTIME_* variable would otherwise be ignored. */
function reportUnknownEnv(env: Record<string, string>, problems: string[]) {
  const known = new Set(
    [...Object.values(JOB_SETTINGS), ...Object.values(REALTIME_SETTINGS)].flatMap((s) => s.env),
  );
  for (const name of Object.keys(env)) {
    if (/^FLUXBASE_(JOBS|REALTIME)_/.test(name) && !known.has(name)) {
      const prefix = name.startsWith("FLUXBASE_JOBS_") ? "FLUXBASE_JOBS_" : "FLUXBASE_REALTIME_";
      const allowed = [...known].filter((k) => k.startsWith(prefix)).join(", ");
      problems.push(`environment variable ${name}: unknown setting; known: ${allowed}`);
    }
  }
}

function defaultFile(): string | null {
  try {
    return Deno.statSync("fluxbase.yaml").isFile ? "fluxbase.yaml" : null;
  } catch {
    return null;
  }
}

function readYaml(file: string, problems: string[]): Record<string, unknown> {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    problems.push(`${file}: cannot be read (${(e as Error).message})`);
    return {};
  }
  try {
    const doc = parseYaml(text) ?? {};
    if (typeof doc !== "object" || Array.isArray(doc)) {
      problems.push(`${file}: expected a mapping of blocks (jobs:, server:, ...)`);
      return {};
    }
    return doc as Record<string, unknown>;
  } catch (e) {
    problems.push(`${file}: is not valid YAML (${(e as Error).message.split("\n")[0]})`);
    return {};
  }
}

function reportUnknownKeys(
  yaml: Record<string, unknown>,
  known: Set<string>,
  file: string | null,
  problems: string[],
) {
  const blocks = new Set([...known].map((k) => k.split(".")[0]));
  for (const [block, section] of Object.entries(yaml)) {
    if (!blocks.has(block)) {
      problems.push(`${file}: unknown block "${block}"; known: ${[...blocks].join(", ")}`);
      continue;
    }
    if (!section || typeof section !== "object") {
      problems.push(`${file}: "${block}" must be a mapping`);
      continue;
    }
    for (const key of Object.keys(section)) {
      if (!known.has(`${block}.${key}`)) {
        const allowed = [...known].filter((k) => k.startsWith(`${block}.`)).map((k) =>
          k.slice(block.length + 1)
        );
        problems.push(`${file}: unknown key "${block}.${key}"; known: ${allowed.join(", ")}`);
      }
    }
  }
}
