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
import { Rescuer } from "./queue/rescuer.ts";
import { CronScheduler } from "./queue/scheduler.ts";
import { RealtimeHub } from "./realtime/hub.ts";
import { WorkerSupervisor } from "./worker/supervisor.ts";

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
  /** Output of worker processes: inherited (default) or discarded (tests). */
  workerStdio?: "inherit" | "null";
}

/** The database URL: DATABASE_URL, or an embedded PostgreSQL started under the data dir. */
async function resolveDatabase(
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

    const realtime = new RealtimeHub({ config, sql, databaseUrl: db.url, verifier });
    await realtime.start();
    stops.push(() => realtime.stop());
    const app = createApp({ config, sql, verifier, realtime });
    const server = Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen: () => {},
    }, app.fetch);
    // Pushed before the hub's stop, so sockets close before the HTTP server drains.
    stops.splice(stops.length - 1, 0, () => server.shutdown());
    const port = server.addr.port;
    const url = `http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${port}`;
    // With port 0 the URL that jobs see as FLUXBASE_URL is known only now.
    if (config.port === 0 && config.publicUrl.endsWith(":0")) {
      config = { ...config, publicUrl: url };
    }

    if (config.jobs.enabled) {
      // Every process rescues the jobs of dead workers: the writes are guarded, so two
      // rescuers never double-charge an attempt.
      const rescuer = new Rescuer({ sql, config: config.jobs });
      rescuer.start();
      stops.push(() => rescuer.stop());
      const scheduler = new CronScheduler({ sql });
      scheduler.start();
      stops.push(() => scheduler.stop());
      if (config.jobs.workerMode === "embedded" && config.jobs.embeddedWorkerCount > 0) {
        const supervisor = new WorkerSupervisor({
          config,
          databaseUrl: db.url,
          jwtSecret,
          stdio: options.workerStdio,
        });
        await supervisor.start();
        stops.push(() => supervisor.stop());
        log(`Started ${config.jobs.embeddedWorkerCount} worker processes`);
      }
    }
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
    { ...config.jobs, dataDir: config.dataDir },
  );
  const s = report.summary;
  log(
    `Job functions from ${config.jobs.dir}: ${s.created} created, ${s.updated} updated, ` +
      `${s.unchanged} unchanged, ${s.errors} with errors`,
  );
  for (const e of report.errors) log(`  ${e.file ?? e.name}: ${e.error}`);
}
