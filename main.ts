/**
 * Entry point. `deno task start` runs the API process (with embedded workers by default);
 * `deno task worker` (`main.ts worker`) runs one standalone worker process.
 */
import { ConfigError, loadConfig } from "./src/config.ts";
import { resolveJwtSecret } from "./src/auth/secret.ts";
import { runningEmbeddedUrl } from "./src/db/embedded.ts";
import { startServer } from "./src/server.ts";
import { runWorker } from "./src/worker/main.ts";

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  const mode = Deno.args[0] ?? "server";
  if (mode === "worker") {
    // A standalone worker (`deno task worker`; supervised ones run src/worker/process.ts)
    // uses DATABASE_URL, or the embedded database of a server running from the same data
    // directory; it never starts a database of its own, which would hold no jobs.
    const databaseUrl = config.databaseUrl ?? await runningEmbeddedUrl(config.dataDir);
    if (!databaseUrl) {
      console.error(
        `No database for the worker: set DATABASE_URL, or start the server first ` +
          `(its embedded PostgreSQL in ${config.dataDir} is not running)`,
      );
      return 2;
    }
    const jwtSecret = await resolveJwtSecret(config.jwtSecret, config.dataDir);
    await runWorker({ config, databaseUrl, jwtSecret });
    return 0;
  }
  if (mode !== "server") {
    console.error(`Unknown mode "${mode}"; use no argument (server) or "worker"`);
    return 2;
  }

  const server = await startServer(config);
  console.log(
    [
      "",
      `Fluxbase jobs server listening on ${server.url}`,
      `  anon key:    ${server.anonKey}`,
      `  service key: ${server.serviceKey}`,
      "",
    ].join("\n"),
  );
  await waitForSignal();
  console.log("Shutting down...");
  await server.stop();
  return 0;
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = () => {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
      resolve();
    };
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
  });
}

if (import.meta.main) Deno.exit(await main());
