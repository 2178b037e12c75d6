/**
 * `deno task bench`: the jobs benchmark (Fluxbase against graphile-worker), the isolate pool
 * alone, and, when present, the realtime benchmark of bench/realtime.ts.
 */
import { benchJobs } from "./jobs.ts";
import { benchPool } from "./pool.ts";

await benchJobs();
await benchPool();

const realtimeUrl = new URL("./realtime.ts", import.meta.url);
let realtime: Record<string, unknown> | null = null;
try {
  await Deno.stat(realtimeUrl);
  realtime = await import(realtimeUrl.href);
} catch (e) {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
}
if (realtime) {
  const fn = Object.values(realtime).find((v) => typeof v === "function") as
    | (() => Promise<unknown>)
    | undefined;
  if (fn) await fn();
}
Deno.exit(0);
