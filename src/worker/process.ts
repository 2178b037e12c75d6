/**
 * Entry of a supervised worker process. Everything it needs (worker id, configuration,
 * database URL, JWT secret) arrives in the supervisor's boot record, so it loads no config
 * file and starts no database of its own. `main.ts worker` is the standalone equivalent.
 */
import { takeWorkerBoot } from "./boot.ts";
import { runWorker } from "./main.ts";

if (import.meta.main) {
  const boot = takeWorkerBoot();
  if (!boot) {
    console.error(
      "src/worker/process.ts is started by the worker supervisor; use `main.ts worker`",
    );
    Deno.exit(2);
  }
  await runWorker({ ...boot, boot });
}
