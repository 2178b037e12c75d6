/** The `fluxbase` command run as a subprocess against a real server: output and exit codes. */
import assert from "node:assert/strict";
import { startTestServer } from "./_helpers/server.ts";

const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;

async function cli(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", "--no-lock", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/**
 * What the subprocess needs of this environment to resolve its npm imports: the Deno cache, and
 * the registry's proxy and certificates. Without a cached package document Deno fetches it again,
 * and behind a TLS-inspecting proxy that fails unless it gets the extra CA (NODE_EXTRA_CA_CERTS
 * or DENO_CERT), as a fresh CI machine showed.
 */
function passThrough(): Record<string, string> {
  const names = [
    "DENO_DIR",
    "DENO_CERT",
    "DENO_TLS_CA_STORE",
    "NODE_EXTRA_CA_CERTS",
    "NPM_CONFIG_REGISTRY",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
  ];
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = Deno.env.get(name);
    if (value) env[name] = value;
  }
  return env;
}

Deno.test({
  name: "fluxbase CLI against a real server",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const srv = await startTestServer({ workers: 1 });
    const env = {
      FLUXBASE_URL: srv.url,
      FLUXBASE_SERVICE_KEY: srv.serviceKey,
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      ...passThrough(),
    };
    try {
      let jobId = "";
      await t.step("jobs submit --wait --json prints the completed job, exit 0", async () => {
        const r = await cli([
          "jobs",
          "submit",
          "process-data",
          "--payload",
          '{"items":[1,2]}',
          "--wait",
          "--json",
        ], env);
        assert.equal(r.code, 0, r.stderr);
        const job = JSON.parse(r.stdout);
        assert.equal(job.status, "completed");
        assert.deepEqual(job.result, { success: true, processed: 2 });
        jobId = job.id;
      });
      await t.step(
        "jobs watch prints progress lines and the result from the realtime feed",
        async () => {
          const sub = await cli(
            [
              "jobs",
              "submit",
              "long-import",
              "--payload",
              '{"total":50,"batch_size":10,"delay_ms":150}',
              "--json",
            ],
            env,
          );
          const id = JSON.parse(sub.stdout).id;
          const r = await cli(["jobs", "watch", id, "--timeout", "60"], env);
          assert.equal(r.code, 0, r.stderr);
          const lines = r.stdout.trim().split("\n");
          assert.equal(lines.at(-1), 'Result: {"success":true,"imported":50}');
          assert.ok(
            lines.some((l) => /^completed +\[#{30}\] 100% Imported 50\/50$/.test(l)),
            r.stdout,
          );
        },
      );
      await t.step("jobs logs --follow streams lines until the job ends, exit 0", async () => {
        const chatty = new URL("./fixtures/cli/chatty.ts", import.meta.url).pathname;
        const deployed = await cli(["functions", "deploy", chatty], env);
        assert.equal(deployed.code, 0, deployed.stderr);
        const sub = await cli(["jobs", "submit", "chatty", "--json"], env);
        const id = JSON.parse(sub.stdout).id;
        const r = await cli(["jobs", "logs", id, "--follow"], env);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.trim().split("\n").filter((l) => /line \d/.test(l));
        assert.deepEqual(lines.map((l) => l.match(/line \d/)![0]), [
          "line 1",
          "line 2",
          "line 3",
          "line 4",
          "line 5",
        ]);
      });
      await t.step("jobs get prints key/value lines", async () => {
        const r = await cli(["jobs", "get", jobId], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^id: +${jobId}$`, "m"));
        assert.match(r.stdout, /^status: +completed$/m);
      });
      await t.step("jobs list prints a table with the job", async () => {
        const r = await cli(["jobs", "list", "--status", "completed"], env);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.trim().split("\n");
        assert.match(lines[0], /^ID +NAME +NAMESPACE +STATUS +PROGRESS +CREATED$/);
        assert.ok(
          lines.some((l) =>
            l.startsWith(jobId) && /process-data +default +completed +100%/.test(l)
          ),
        );
        const j = await cli(["jobs", "list", "--json"], env);
        assert.equal(JSON.parse(j.stdout).length, 3); // this job, the watched and the chatty one
      });
      await t.step("jobs logs prints the captured lines", async () => {
        const r = await cli(["jobs", "logs", jobId], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /info +Running for user:/);
      });
      await t.step("a failing job: submit --wait exits 1; retry prints the new id", async () => {
        const r = await cli([
          "jobs",
          "submit",
          "failing-job",
          "--wait",
          "--json",
          "--timeout",
          "60",
        ], env);
        assert.equal(r.code, 1);
        const job = JSON.parse(r.stdout);
        assert.equal(job.status, "failed");
        assert.match(job.error_message, /Failed on purpose/);
        const retry = await cli(["jobs", "retry", job.id], env);
        assert.equal(retry.code, 0, retry.stderr);
        assert.match(retry.stdout, /^Retry job ID: [0-9a-f-]{36}\n$/);
      });
      await t.step("cancel of a finished job exits 1 with a one-line reason", async () => {
        const r = await cli(["jobs", "cancel", jobId], env);
        assert.equal(r.code, 1);
        assert.equal(r.stderr.trim().split("\n").length, 1);
        assert.match(r.stderr, /^Error: Cannot cancel job .*HTTP 409/);
      });
      await t.step("jobs get of an unknown id exits 1 with 404", async () => {
        const r = await cli(["jobs", "get", crypto.randomUUID()], env);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /HTTP 404/);
      });
      await t.step("jobs stats and workers list", async () => {
        const s = await cli(["jobs", "stats", "--json"], env);
        assert.equal(s.code, 0, s.stderr);
        const stats = JSON.parse(s.stdout);
        assert.ok(stats.completed >= 1);
        assert.equal(typeof stats.total, "number");
        const w = await cli(["workers", "list"], env);
        assert.equal(w.code, 0, w.stderr);
        assert.match(w.stdout, /^ID +NAME +HOST +PID +STATUS +JOBS +LAST HEARTBEAT$/m);
      });
      await t.step("functions deploy, disable (submit refused), enable, list", async () => {
        const file = new URL("./fixtures/sdk/jobs/greet.ts", import.meta.url).pathname;
        const d = await cli(["functions", "deploy", file], env);
        assert.equal(d.code, 0, d.stderr);
        assert.match(d.stdout, /^(Created|Updated) function default\/greet/);
        const off = await cli(["functions", "disable", "greet"], env);
        assert.equal(off.code, 0, off.stderr);
        assert.equal(off.stdout, "Function default/greet disabled\n");
        const refused = await cli(["jobs", "submit", "greet", "--payload", '{"name":"x"}'], env);
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /HTTP 403/);
        const on = await cli(["functions", "enable", "greet"], env);
        assert.equal(on.code, 0, on.stderr);
        const l = await cli(["functions", "list", "--json"], env);
        const greet = JSON.parse(l.stdout).find((f: { name: string }) => f.name === "greet");
        assert.equal(greet.enabled, true);
      });
      await t.step(
        "functions sync --dry-run sends the directory and prints the summary",
        async () => {
          const dir = new URL("./fixtures/sdk/jobs", import.meta.url).pathname;
          const r = await cli([
            "functions",
            "sync",
            "--dir",
            dir,
            "--namespace",
            "cli-sync",
            "--dry-run",
          ], env);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(
            r.stdout,
            "Dry run: Created: 1, Updated: 0, Deleted: 0, Unchanged: 0, Errors: 0\n",
          );
          const real = await cli([
            "functions",
            "sync",
            "--dir",
            dir,
            "--namespace",
            "cli-sync",
            "--json",
          ], env);
          assert.equal(JSON.parse(real.stdout).summary.created, 1);
        },
      );
      await t.step("token mints a token the server accepts", async () => {
        const r = await cli(["token", "--sub", "cli-user", "--email", "c@example.com"], {
          ...env,
          FLUXBASE_AUTH_JWT_SECRET: srv.jwtSecret,
        });
        assert.equal(r.code, 0, r.stderr);
        const token = r.stdout.trim();
        const list = await cli(["jobs", "list", "--json", "--token", token], env);
        assert.equal(list.code, 0, list.stderr);
        assert.deepEqual(JSON.parse(list.stdout), []); // this user has no jobs
        const bad = await cli(["jobs", "list", "--token", token + "x"], env);
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /HTTP 401/);
      });
      await t.step("usage errors exit 2", async () => {
        for (
          const args of [
            ["jobs", "get"],
            ["jobs", "frobnicate"],
            ["jobs", "submit", "x", "--payload", "{not json"],
            ["jobs", "list", "--status", "weird"],
            ["jobs", "list", "--bogus", "1"],
            ["token"],
          ]
        ) {
          const r = await cli(args, env);
          assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
          assert.match(r.stderr, /^Error: /);
        }
      });
    } finally {
      await srv.stop();
    }
  },
});
