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
  exitWithSupervisor();
  await runWorker({ ...boot, boot });
}

/**
 * A supervisor killed with SIGKILL cannot stop its children, and an orphaned worker would run
 * on forever beside the replacements a restarted server starts. Re-parenting gives it away:
 * the worker then shuts down as on SIGTERM (running jobs finish within the grace period,
 * unstarted ones go back to pending).
 */
function exitWithSupervisor(): void {
  const supervisor = Deno.ppid;
  const timer = setInterval(() => {
    if (Deno.ppid === supervisor) return;
    clearInterval(timer);
    Deno.kill(Deno.pid, "SIGTERM");
  }, 500);
  Deno.unrefTimer(timer);
}
