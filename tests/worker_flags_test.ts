/** The flags a worker process starts with (src/worker/supervisor.ts), and the standalone task's. */
import assert from "node:assert/strict";
import { heapFlags, workerFlags } from "../src/worker/supervisor.ts";

const v8Flags = (flags: string[]) =>
  flags.find((f) => f.startsWith("--v8-flags="))!.slice("--v8-flags=".length).split(",");

Deno.test("a worker's heaps: capped at its memory, young generation capped, first major GC late", () => {
  const flags = v8Flags(workerFlags(512, "/tmp/fluxbase-data"));
  assert.deepEqual(flags, [
    "--max-old-space-size=512",
    "--semi-space-growth-factor=8",
    "--max-semi-space-size=8",
    "--initial-old-space-size=32",
  ]);
  // A small heap cap: the first major collection still comes before the cap.
  assert.ok(heapFlags(64).endsWith("--initial-old-space-size=32"));
  assert.ok(heapFlags(40).endsWith("--initial-old-space-size=20"));
});

Deno.test("the standalone worker task passes the supervisor's heap flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.ok(
    (config.tasks.worker as string).includes(`--v8-flags=${heapFlags(512)} `),
    `deno.json's worker task: ${config.tasks.worker}`,
  );
});

Deno.test("a worker process cannot read or write the data directory, and has no ffi", () => {
  const flags = workerFlags(512, "/tmp/fluxbase-data/../fluxbase-data");
  assert.ok(flags.includes("--deny-read=/tmp/fluxbase-data"));
  assert.ok(flags.includes("--deny-write=/tmp/fluxbase-data"));
  assert.ok(!flags.some((f) => f.startsWith("--allow-ffi") || f === "--allow-all" || f === "-A"));
});
