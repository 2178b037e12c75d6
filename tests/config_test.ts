import assert from "node:assert/strict";
import { ConfigError, loadConfig, parseDuration } from "../src/config.ts";

Deno.test("defaults match the spec's worker configuration table", () => {
  const c = loadConfig({ env: {}, file: null });
  assert.equal(c.port, 8080);
  assert.equal(c.jobs.workerMode, "embedded");
  assert.equal(c.jobs.embeddedWorkerCount, 4);
  assert.equal(c.jobs.maxConcurrentPerWorker, 5);
  assert.equal(c.jobs.maxConcurrentPerNamespace, 20);
  assert.equal(c.jobs.pollIntervalMs, 1000);
  assert.equal(c.jobs.workerHeartbeatIntervalMs, 10_000);
  assert.equal(c.jobs.workerTimeoutMs, 30_000);
  assert.equal(c.jobs.defaultProgressTimeoutMs, 300_000);
  assert.equal(c.jobs.defaultTimeoutSeconds, 300);
  assert.equal(c.jobs.defaultMaxRetries, 3);
  assert.equal(c.jobs.dir, "./jobs");
  assert.equal(c.databaseUrl, null);
});

Deno.test("durations: 500ms, 1s, 300s, 5m, bare seconds", () => {
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("1s"), 1000);
  assert.equal(parseDuration("300s"), 300_000);
  assert.equal(parseDuration("5m"), 300_000);
  assert.equal(parseDuration("2"), 2000);
  assert.equal(parseDuration("soon"), null);
  assert.equal(parseDuration("-1s"), null);
});

Deno.test("fluxbase.yaml jobs block, overridden by FLUXBASE_JOBS_<KEY>", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/fluxbase.yaml`;
    await Deno.writeTextFile(
      file,
      `jobs:\n  enabled: true\n  worker_mode: "embedded"\n  embedded_worker_count: 8\n` +
        `  max_concurrent_per_worker: 10\n  poll_interval: "2s"\n  worker_timeout: "5m"\n`,
    );
    const c = loadConfig({ file, env: { FLUXBASE_JOBS_EMBEDDED_WORKER_COUNT: "2" } });
    assert.equal(c.jobs.embeddedWorkerCount, 2);
    assert.equal(c.jobs.maxConcurrentPerWorker, 10);
    assert.equal(c.jobs.pollIntervalMs, 2000);
    assert.equal(c.jobs.workerTimeoutMs, 300_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the spec's environment variables", () => {
  const c = loadConfig({
    file: null,
    env: {
      FLUXBASE_JOBS_ENABLED: "false",
      FLUXBASE_JOBS_DIR: "/srv/jobs",
      FLUXBASE_JOBS_AUTO_LOAD_ON_BOOT: "false",
      FLUXBASE_JOBS_EMBEDDED_WORKER_COUNT: "4",
      FLUXBASE_JOBS_DEFAULT_TIMEOUT: "60",
      FLUXBASE_JOBS_DEFAULT_MAX_RETRIES: "0",
    },
  });
  assert.equal(c.jobs.enabled, false);
  assert.equal(c.jobs.dir, "/srv/jobs");
  assert.equal(c.jobs.autoLoadOnBoot, false);
  assert.equal(c.jobs.defaultTimeoutSeconds, 60);
  assert.equal(c.jobs.defaultMaxRetries, 0);
});

Deno.test("invalid values name the key, the value and what is allowed", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ FLUXBASE_JOBS_POLL_INTERVAL: "often" }, /FLUXBASE_JOBS_POLL_INTERVAL: "often".*duration/],
    [{ FLUXBASE_JOBS_WORKER_MODE: "cloud" }, /FLUXBASE_JOBS_WORKER_MODE: "cloud".*"embedded"/],
    [{ FLUXBASE_JOBS_EMBEDDED_WORKER_COUNT: "-1" }, /"-1".*whole number from 0 to 256/],
    [{ FLUXBASE_JOBS_ENABLED: "yes please" }, /true or false/],
    [{ FLUXBASE_PORT: "99999" }, /FLUXBASE_PORT/],
    [{ FLUXBASE_JOBS_POLL_INTERVALL: "1s" }, /FLUXBASE_JOBS_POLL_INTERVALL: unknown setting/],
    [{ FLUXBASE_AUTH_JWT_SECRET: "short" }, /too short/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig({ env, file: null }), (e: Error) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("unknown yaml keys and blocks are reported", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/fluxbase.yaml`;
    await Deno.writeTextFile(file, `jobs:\n  worker_count: 3\nqueues:\n  x: 1\n`);
    assert.throws(() => loadConfig({ file, env: {} }), (e: ConfigError) => {
      assert.equal(e.problems.length, 2);
      assert.match(
        e.problems[0],
        /unknown key "jobs.worker_count"; known: .*embedded_worker_count/,
      );
      assert.match(e.problems[1], /unknown block "queues"/);
      return true;
    });
    await Deno.writeTextFile(file, `jobs: [1, 2`);
    assert.throws(() => loadConfig({ file, env: {} }), /not valid YAML/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
