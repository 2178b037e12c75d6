import assert from "node:assert/strict";
import { join } from "node:path";
import { buildJobEnv } from "../src/isolate/env.ts";
import { IsolatePool } from "../src/isolate/pool.ts";
import type { Permissions } from "../src/isolate/types.ts";
import { handlerCode, LIMITS, makeBundle, makeJob, recorder } from "./fixtures/isolate/harness.ts";

const pool = new IsolatePool();

/** Runs `body` with `permissions` and returns the handler's result. */
async function attempt(body: string, permissions: Permissions = {}, payload: unknown = {}) {
  const bundle = makeBundle(handlerCode(body), { permissions });
  const outcome = await pool.run(bundle, makeJob({ payload }), recorder(), LIMITS).done;
  assert.equal(outcome.kind, "completed", JSON.stringify(outcome));
  return (outcome as { result: unknown }).result;
}

/** Wraps an operation so the job returns "ok:<value>" or the error's name. */
const tryIt = (expr: string) =>
  `try { return "ok:" + (await (${expr})); } catch (e) { return e.name; }`;

Deno.test("network: denied without allow-net, a host list allows that host only", async () => {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response("pong"),
  );
  const other = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response("other"),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/`;
    const otherUrl = `http://127.0.0.1:${other.addr.port}/`;
    const fetchText = (u: string) => tryIt(`fetch(${JSON.stringify(u)}).then((r) => r.text())`);
    assert.equal(await attempt(fetchText(url)), "NotCapable");
    assert.equal(
      await attempt(
        tryIt(
          `Deno.connect({ hostname: "127.0.0.1", port: ${server.addr.port} }).then(() => "connected")`,
        ),
      ),
      "NotCapable",
    );
    const granted = { net: [`127.0.0.1:${server.addr.port}`] };
    assert.equal(await attempt(fetchText(url), granted), "ok:pong");
    assert.equal(await attempt(fetchText(otherUrl), granted), "NotCapable");
    assert.equal(await attempt(fetchText(otherUrl), { net: true }), "ok:other");
  } finally {
    await server.shutdown();
    await other.shutdown();
  }
});

Deno.test("environment: without allow-env only the job's view, never the server's secrets", async () => {
  Deno.env.set("FLUXBASE_AUTH_JWT_SECRET", "super-secret-jwt-value-0123456789abcdef");
  Deno.env.set("FLUXBASE_TEST_PLAIN", "plain-value");
  const env = buildJobEnv(
    Deno.env.toObject(),
    { jobId: "j-1", jobName: "t", namespace: "default" },
    "http://x.test",
  );
  const body = `return {
    secret: Deno.env.get("FLUXBASE_AUTH_JWT_SECRET") ?? null,
    home: Deno.env.get("HOME") ?? null,
    plain: Deno.env.get("FLUXBASE_TEST_PLAIN") ?? null,
    jobId: Deno.env.get("FLUXBASE_JOB_ID"),
    keys: Object.keys(Deno.env.toObject()).filter((k) => !k.startsWith("FLUXBASE_")),
    node: (() => { try { return (globalThis.process?.env?.HOME) ?? "none"; } catch (e) { return e.name; } })(),
  };`;
  const none = await pool.run(makeBundle(handlerCode(body)), makeJob({ env }), recorder(), LIMITS)
    .done;
  assert.deepEqual((none as { result: unknown }).result, {
    secret: null,
    home: null,
    plain: "plain-value",
    jobId: "j-1",
    keys: [],
    node: "none",
  });
  const all = await pool.run(
    makeBundle(handlerCode(body), { permissions: { env: true } }),
    makeJob({ env }),
    recorder(),
    LIMITS,
  ).done;
  const granted = (all as { result: Record<string, unknown> }).result;
  assert.equal(granted.secret, null, "a secret stays hidden even with allow-env");
  assert.equal(granted.home, Deno.env.get("HOME"));
  const listed = await attempt(
    `return [Deno.env.get("HOME") ?? null, Deno.env.get("PATH") ?? null];`,
    { env: ["HOME"] },
  );
  assert.deepEqual(listed, [Deno.env.get("HOME"), null]);
});

Deno.test("environment: two jobs running at once each see their own values", async () => {
  const bundle = makeBundle(handlerCode(`
    Deno.env.set("FLUXBASE_SCRATCH", job.getJobPayload().mine);
    await new Promise((r) => setTimeout(r, 200));
    return [Deno.env.get("FLUXBASE_JOB_ID"), Deno.env.get("FLUXBASE_SCRATCH"), job.getJobPayload().mine];
  `));
  const jobA = makeJob({
    jobId: "job-a",
    env: { FLUXBASE_JOB_ID: "job-a" },
    payload: { mine: "a-data" },
  });
  const jobB = makeJob({
    jobId: "job-b",
    env: { FLUXBASE_JOB_ID: "job-b" },
    payload: { mine: "b-data" },
  });
  const [a, b] = await Promise.all([
    pool.run(bundle, jobA, recorder(), LIMITS).done,
    pool.run(bundle, jobB, recorder(), LIMITS).done,
  ]);
  assert.deepEqual((a as { result: unknown }).result, ["job-a", "a-data", "a-data"]);
  assert.deepEqual((b as { result: unknown }).result, ["job-b", "b-data", "b-data"]);
  // The next job on a warm isolate does not inherit what the previous one set.
  const jobC = makeJob({
    jobId: "job-c",
    env: { FLUXBASE_JOB_ID: "job-c" },
    payload: { mine: "c" },
  });
  const c = await pool.run(
    makeBundle(handlerCode(`return Deno.env.get("FLUXBASE_SCRATCH") ?? null;`)),
    jobC,
    recorder(),
    LIMITS,
  ).done;
  assert.deepEqual((c as { result: unknown }).result, null);
});

Deno.test("a warm isolate shows the next job neither the previous payload nor its env", async () => {
  const bundle = makeBundle(handlerCode(`
    const seen = { env: Deno.env.get("FLUXBASE_SCRATCH") ?? null, cancelled: Deno.env.get("FLUXBASE_JOB_CANCELLED") };
    Deno.env.set("FLUXBASE_SCRATCH", JSON.stringify(job.getJobPayload()));
    return seen;
  `));
  const first = await pool.run(bundle, makeJob({ payload: { card: "4111" } }), recorder(), LIMITS)
    .done;
  assert.equal(pool.stats().idle > 0, true);
  const second = await pool.run(bundle, makeJob({ payload: {} }), recorder(), LIMITS).done;
  assert.deepEqual((first as { result: unknown }).result, { env: null, cancelled: "false" });
  assert.deepEqual((second as { result: unknown }).result, { env: null, cancelled: "false" });
});

Deno.test("files and processes: denied without grants, allowed for granted paths", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fluxbase-perm-test-" });
  const inside = join(dir, "in.txt");
  await Deno.writeTextFile(inside, "hello from disk");
  const read = (p: string) => tryIt(`Deno.readTextFile(${JSON.stringify(p)})`);
  const write = (p: string) =>
    tryIt(`Deno.writeTextFile(${JSON.stringify(p)}, "x").then(() => "written")`);
  const spawn = tryIt(`new Deno.Command("true").output().then((o) => o.code)`);
  assert.equal(await attempt(read(inside)), "NotCapable");
  assert.equal(await attempt(read("/etc/hostname")), "NotCapable");
  assert.equal(await attempt(write(join(dir, "out.txt"))), "NotCapable");
  assert.equal(await attempt(spawn), "NotCapable");
  assert.equal(await attempt(tryIt("Promise.resolve(Deno.hostname())")), "NotCapable");
  assert.equal(await attempt(read(inside), { read: [dir] }), "ok:hello from disk");
  assert.equal(await attempt(read("/etc/hostname"), { read: [dir] }), "NotCapable");
  assert.equal(await attempt(write(join(dir, "out.txt")), { write: [dir] }), "ok:written");
  assert.equal(await Deno.readTextFile(join(dir, "out.txt")), "x");
  assert.equal(
    await attempt(write("/tmp/fluxbase-not-granted.txt"), { write: [dir] }),
    "NotCapable",
  );
  assert.equal(await attempt(spawn, { run: ["true"] }), "ok:0");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("shutdown", async () => {
  await pool.shutdown();
});
