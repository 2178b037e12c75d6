/**
 * The SDK in a real browser: the npm build (ESM JavaScript, loaded as modules, no bundler) runs
 * in headless Chromium driven by playwright-core. The page is served from its own origin, so
 * every API call is a cross-origin request (CORS preflights included) and realtime uses the
 * browser's native WebSocket, as in a real web app.
 *
 * Needs Debian's Chromium at /usr/bin/chromium (`apt-get install chromium`; CI installs it);
 * without it the test is ignored with a message saying so.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startTestServer } from "./_helpers/server.ts";
import { createClient } from "../src/sdk/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/browser/", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  // Without these Chromium keeps trying to reach Google services on a closed network.
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

const CHROMIUM_PRESENT = hasChromium();
if (!CHROMIUM_PRESENT) {
  console.warn(
    `sdk_browser_test: skipped, ${CHROMIUM} is missing ` +
      "(install it with `apt-get install -y --no-install-recommends chromium`)",
  );
}

async function buildSdk(outDir: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", "scripts/build_npm.ts", "--out", outDir],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`scripts/build_npm.ts failed (${out.code}):\n${text}`);
  }
}

/** Serves the page and the built SDK (under /sdk/) from an origin of its own. */
function serveStatic(sdkDir: string): { origin: string; shutdown(): Promise<void> } {
  const files: Record<string, string> = {
    "/": join(FIXTURES, "index.html"),
    "/page.js": join(FIXTURES, "page.js"),
  };
  const types: Record<string, string> = {
    html: "text/html; charset=utf-8",
    js: "text/javascript; charset=utf-8",
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      let file = files[path];
      const sdk = /^\/sdk\/([\w-]+\.js)$/.exec(path);
      if (sdk) file = join(sdkDir, sdk[1]);
      if (!file) return new Response("not found", { status: 404 });
      try {
        const body = await Deno.readFile(file);
        const type = types[file.split(".").at(-1)!] ?? "application/octet-stream";
        return new Response(body, { headers: { "content-type": type } });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    shutdown: () => server.shutdown(),
  };
}

interface ScenarioArgs {
  url: string;
  accessToken: string;
  otherUsersJobId: string;
  randomId: string;
  timeoutMs: number;
}

Deno.test({
  name: CHROMIUM_PRESENT
    ? "the SDK works in a browser: cross-origin HTTP, native WebSocket realtime, error results"
    : `the SDK works in a browser (ignored: ${CHROMIUM} is missing; apt-get install chromium)`,
  ignore: !CHROMIUM_PRESENT,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "fluxbase-browser-" });
    const sdkDir = join(work, "sdk");
    const [srv] = await Promise.all([startTestServer({ workers: 1 }), buildSdk(sdkDir)]);
    const site = serveStatic(sdkDir);
    let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
    try {
      // Another user's job, which user A must not see.
      const userB = createClient(srv.url, { accessToken: await srv.token({ sub: "user-b" }) });
      const { data: otherJob, error: otherError } = await userB.jobs.submit("process-data", {
        items: [1],
      });
      assert.equal(otherError, null);

      context = await chromium.launchPersistentContext(join(work, "profile"), {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 15_000,
      });
      const page = context.pages()[0] ?? await context.newPage();
      const consoleErrors: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") consoleErrors.push(m.text());
      });
      page.on("pageerror", (e) => consoleErrors.push(String(e)));
      await page.goto(site.origin + "/", { timeout: 10_000 });
      await page.waitForFunction(() => "runScenario" in globalThis, undefined, { timeout: 10_000 });

      const args: ScenarioArgs = {
        url: srv.url,
        accessToken: await srv.token({ sub: "user-a", email: "a@example.com" }),
        otherUsersJobId: otherJob!.id,
        randomId: crypto.randomUUID(),
        timeoutMs: 20_000,
      };
      const report = await page.evaluate(
        // deno-lint-ignore no-explicit-any -- defined by tests/fixtures/browser/page.js
        (a: ScenarioArgs) => (globalThis as any).runScenario(a),
        args,
      );
      const diag = () => JSON.stringify({ report, consoleErrors }, null, 2);

      // A browser page on another origin than the API, with no Deno and a native WebSocket.
      assert.notEqual(report.pageOrigin, new URL(srv.url).origin, diag());
      assert.equal(report.denoGlobal, false, diag());
      assert.equal(report.nativeWebSocket, true, diag());
      assert.equal(report.realtimeAvailable, true, diag());
      assert.equal(report.failure, null, diag());
      assert.deepEqual(report.channelStatuses, ["SUBSCRIBED", "CLOSED"], diag());
      assert.deepEqual(report.submit, { status: "pending", error: null }, diag());

      // Realtime: UPDATE events of the job, progress up to 100 %, then completed.
      assert.ok(report.events.length > 0, diag());
      for (const e of report.events) {
        assert.equal(e.eventType, "UPDATE", diag());
        assert.equal(e.schema, "jobs", diag());
        assert.equal(e.table, "queue", diag());
      }
      assert.ok(
        report.events.some((e: { percent: unknown }) => e.percent === 100),
        `no progress event with percent 100:\n${diag()}`,
      );
      assert.equal(report.events.at(-1).status, "completed", diag());
      assert.deepEqual(
        report.realtimeFinal,
        { status: "completed", result: { success: true, processed: 3 } },
        diag(),
      );

      // Polling with jobs.get sees the same end state.
      assert.equal(report.polled.threw, null, diag());
      assert.equal(report.polled.error, null, diag());
      assert.equal(report.polled.data.status, "completed", diag());
      assert.deepEqual(report.polled.data.result, { success: true, processed: 3 }, diag());
      assert.equal(report.polled.data.progress?.percent, 100, diag());

      // Error results resolve as { data: null, error } with the status; nothing throws.
      for (const r of [report.otherUsersJob, report.randomJob]) {
        assert.equal(r.threw, null, diag());
        assert.equal(r.data, null, diag());
        assert.equal(r.error.status, 404, diag());
        assert.equal(typeof r.error.code, "string", diag());
        assert.equal(typeof r.error.message, "string", diag());
      }
      // The 404s are expected console noise in Chromium; anything else is not.
      const unexpected = consoleErrors.filter((m) => !/status of 404/.test(m));
      assert.deepEqual(unexpected, [], diag());
    } finally {
      await context?.close().catch(() => {});
      await site.shutdown();
      await srv.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
