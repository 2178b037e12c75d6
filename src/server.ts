/**
 * Boots the API process: database (embedded or DATABASE_URL), migrations, JWT secret,
 * job functions from `jobs/`, the HTTP app with realtime, and the worker supervisor and
 * cron scheduler. `stop()` undoes it in reverse order; it is safe twice.
 */
import { apiKeys, createTokenVerifier } from "./auth/jwt.ts";
import { resolveJwtSecret } from "./auth/secret.ts";
import type { Config } from "./config.ts";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./db/embedded.ts";
import { migrate } from "./db/migrate.ts";
import { createPool, type Sql } from "./db/pool.ts";
import { fromLoaded, syncFunctions } from "./functions/deploy.ts";
import { loadFunctionsDir } from "./functions/loader.ts";
import { createApp } from "./http/app.ts";

export interface RunningServer {
  url: string;
  port: number;
  databaseUrl: string;
  jwtSecret: string;
  anonKey: string;
  serviceKey: string;
  sql: Sql;
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: (line: string) => void;
}

/** The database URL: DATABASE_URL, or an embedded PostgreSQL started under the data dir. */
export async function resolveDatabase(
  config: Config,
  log: (line: string) => void,
): Promise<{ url: string; embedded: EmbeddedPostgres | null }> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: null };
  const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, log });
  return { url: embedded.url, embedded };
}

export async function startServer(
  config: Config,
  options: StartOptions = {},
): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => console.log(line));
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    while (stops.length) await stops.pop()!().catch((e) => log(`Error while stopping: ${e}`));
  };
  try {
    const db = await resolveDatabase(config, log);
    if (db.embedded) stops.push(() => db.embedded!.stop());
    const sql = createPool(db.url, { applicationName: "fluxbase-api" });
    stops.push(() => sql.end({ timeout: 5 }));
    const applied = await migrate(sql);
    if (applied.length) log(`Applied migrations: ${applied.join(", ")}`);

    const jwtSecret = await resolveJwtSecret(config.jwtSecret, config.dataDir);
    const verifier = createTokenVerifier({
      secret: jwtSecret,
      jwksUrl: config.jwksUrl,
      clockToleranceSeconds: config.jwtClockToleranceSeconds,
    });
    if (config.jobs.enabled && config.jobs.autoLoadOnBoot) await loadJobsDir(sql, config, log);

    const app = createApp({ config, sql, verifier });
    const server = Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen: () => {},
    }, app.fetch);
    stops.push(() => server.shutdown());
    const port = server.addr.port;
    const url = `http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${port}`;
    const keys = await apiKeys(jwtSecret);
    let stopped = false;
    return {
      url,
      port,
      databaseUrl: db.url,
      jwtSecret,
      ...keys,
      sql,
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** Deploys the functions of FLUXBASE_JOBS_DIR; a bad file is logged, the others load. */
async function loadJobsDir(sql: Sql, config: Config, log: (line: string) => void) {
  let loaded;
  try {
    loaded = await loadFunctionsDir(config.jobs.dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      log(`Jobs directory ${config.jobs.dir} does not exist; no functions loaded`);
      return;
    }
    throw e;
  }
  const report = await syncFunctions(
    (fn) => sql.begin(fn) as Promise<void>,
    {
      namespace: "default",
      functions: loaded.functions.map((f) => fromLoaded(f, "filesystem", "default")),
      loadErrors: loaded.errors,
      deleteMissing: false,
      dryRun: false,
    },
    config.jobs,
  );
  const s = report.summary;
  log(
    `Job functions from ${config.jobs.dir}: ${s.created} created, ${s.updated} updated, ` +
      `${s.unchanged} unchanged, ${s.errors} with errors`,
  );
  for (const e of report.errors) log(`  ${e.file ?? e.name}: ${e.error}`);
}
