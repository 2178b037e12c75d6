/**
 * Builds `@fluxbase/sdk`, installs the tarball into a scratch Node project (plus `ws` from
 * the npm registry for realtime on Node 20) and runs a submit-and-wait script with Node.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startTestServer } from "./_helpers/server.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" })
    .output();
  const r = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}):\n${r.stderr}${r.stdout}`);
  }
  return r;
}

const SCRIPT = `
import { createClient } from "@fluxbase/sdk";
import { WebSocket } from "ws";

const client = createClient(process.env.FLUXBASE_URL, {
  serviceKey: process.env.FLUXBASE_SERVICE_KEY,
  WebSocket,
});
const { data: job, error } = await client.jobs.submit("process-data", { items: [1, 2, 3] });
if (error) { console.error("submit failed:", error.message); process.exit(1); }
console.log("submitted", job.status);
const updates = [];
const { data: done, error: waitError } = await client.jobs.waitFor(job.id, {
  timeoutMs: 30000,
  onUpdate: (j) => updates.push(j.status),
});
if (waitError) { console.error("wait failed:", waitError.code, waitError.message); process.exit(1); }
console.log("final", done.status, JSON.stringify(done.result));
console.log("realtime", client.realtime.available);
const bad = await createClient(process.env.FLUXBASE_URL, { apiKey: "not-a-jwt" }).jobs.get(job.id);
console.log("error", bad.error.status, typeof bad.error.code);
client.realtime.disconnect();
`;

Deno.test({
  name: "the npm package installs into a Node project and submits and waits for a job",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "fluxbase-npm-" });
    const srv = await startTestServer({ workers: 1 });
    try {
      const dist = join(work, "dist");
      await run(
        Deno.execPath(),
        ["run", "-A", "--no-lock", "scripts/build_npm.ts", "--out", dist],
        ROOT,
      );
      const pack = await run("npm", ["pack", "--silent", "--pack-destination", work], dist);
      const tarball = join(work, pack.stdout.trim().split("\n").at(-1)!);
      const app = join(work, "app");
      await Deno.mkdir(app);
      await Deno.writeTextFile(
        join(app, "package.json"),
        JSON.stringify({ name: "scratch", private: true, type: "module" }),
      );
      await run("npm", ["install", "--no-audit", "--no-fund", "--silent", tarball, "ws@8"], app);
      await Deno.writeTextFile(join(app, "main.mjs"), SCRIPT);
      const node = await run("node", ["--version"], app);
      assert.match(node.stdout, /^v\d+/);
      const r = await run("node", ["main.mjs"], app, {
        FLUXBASE_URL: srv.url,
        FLUXBASE_SERVICE_KEY: srv.serviceKey,
      });
      assert.equal(
        r.stdout,
        [
          "submitted pending",
          'final completed {"success":true,"processed":3}',
          "realtime true",
          "error 401 string",
          "",
        ].join("\n"),
      );
      const pkg = JSON.parse(
        await Deno.readTextFile(join(app, "node_modules/@fluxbase/sdk/package.json")),
      );
      assert.equal(pkg.name, "@fluxbase/sdk");
      assert.equal(pkg.type, "module");
      await Deno.stat(join(app, "node_modules/@fluxbase/sdk/mod.d.ts"));
    } finally {
      await srv.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
