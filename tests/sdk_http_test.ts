import assert from "node:assert/strict";
import { createClient, FluxbaseError } from "../src/sdk/mod.ts";
import { FakeServer, job } from "./fixtures/sdk/fake_server.ts";

Deno.test("jobs.submit() sends the documented body and headers, and returns the job", async () => {
  const srv = new FakeServer();
  try {
    srv.reply("POST /api/v1/jobs/submit", { status: 201, json: job() });
    const client = createClient(srv.url + "/", { apiKey: "anon-key" });
    const { data, error } = await client.jobs.submit("process-data", { items: [1, 2] }, {
      namespace: "etl",
      priority: 5,
      scheduledAt: new Date("2030-01-02T03:04:05Z"),
      onBehalfOf: "user-b",
    });
    assert.equal(error, null);
    assert.equal(data?.id, job().id);
    assert.equal(data?.status, "pending");
    const r = srv.requests[0];
    assert.equal(r.method, "POST");
    assert.equal(r.path, "/api/v1/jobs/submit");
    assert.deepEqual(r.body, {
      job_name: "process-data",
      payload: { items: [1, 2] },
      namespace: "etl",
      priority: 5,
      scheduled_at: "2030-01-02T03:04:05.000Z",
      on_behalf_of: "user-b",
    });
    assert.equal(r.headers.get("apikey"), "anon-key");
    assert.equal(r.headers.get("authorization"), "Bearer anon-key");
    assert.equal(r.headers.get("content-type"), "application/json");
  } finally {
    await srv.close();
  }
});

Deno.test("submit() without payload or options sends only job_name", async () => {
  const srv = new FakeServer();
  try {
    srv.reply("POST /api/v1/jobs/submit", { status: 201, json: job() });
    const client = createClient(srv.url, { apiKey: "k" });
    await client.jobs.submit("noop");
    assert.deepEqual(srv.requests[0].body, { job_name: "noop" });
  } finally {
    await srv.close();
  }
});

Deno.test("credentials: service key, access token and setSession() pick the bearer token", async (t) => {
  const srv = new FakeServer();
  srv.reply("GET /api/v1/jobs", { json: { jobs: [], limit: 50, offset: 0, total: 0 } });
  try {
    await t.step("serviceKey is both apikey and bearer", async () => {
      await createClient(srv.url, { serviceKey: "svc" }).jobs.list();
      const h = srv.requests.at(-1)!.headers;
      assert.equal(h.get("apikey"), "svc");
      assert.equal(h.get("authorization"), "Bearer svc");
    });
    await t.step("accessToken alone sends no apikey", async () => {
      await createClient(srv.url, { accessToken: "user-jwt" }).jobs.list();
      const h = srv.requests.at(-1)!.headers;
      assert.equal(h.get("apikey"), null);
      assert.equal(h.get("authorization"), "Bearer user-jwt");
    });
    await t.step(
      "setSession() overrides the anon key as bearer, clearSession() restores it",
      async () => {
        const c = createClient(srv.url, { apiKey: "anon" });
        c.auth.setSession("session-jwt");
        await c.jobs.list();
        let h = srv.requests.at(-1)!.headers;
        assert.equal(h.get("apikey"), "anon");
        assert.equal(h.get("authorization"), "Bearer session-jwt");
        assert.equal(c.auth.getToken(), "session-jwt");
        c.auth.clearSession();
        await c.jobs.list();
        h = srv.requests.at(-1)!.headers;
        assert.equal(h.get("authorization"), "Bearer anon");
        assert.throws(() => c.auth.setSession(""), TypeError);
      },
    );
  } finally {
    await srv.close();
  }
});

Deno.test("jobs.list() returns the array, the total as count, and sends filters as query", async () => {
  const srv = new FakeServer();
  try {
    srv.reply("GET /api/v1/jobs", {
      json: { jobs: [job({ status: "running" })], limit: 20, offset: 0, total: 7 },
    });
    const c = createClient(srv.url, { apiKey: "k" });
    const r = await c.jobs.list({ status: "running", limit: 20, offset: 0, namespace: "default" });
    assert.equal(r.error, null);
    assert.ok(Array.isArray(r.data));
    assert.equal(r.data?.length, 1);
    assert.equal(r.data?.[0].status, "running");
    assert.equal(r.count, 7);
    const q = srv.requests[0].query;
    assert.equal(q.get("status"), "running");
    assert.equal(q.get("limit"), "20");
    assert.equal(q.get("offset"), "0");
    assert.equal(q.get("namespace"), "default");
    assert.equal(q.has("job_name"), false);
  } finally {
    await srv.close();
  }
});

Deno.test("get, cancel, retry and getLogs call their paths and unwrap data", async () => {
  const srv = new FakeServer();
  try {
    const id = "a/b"; // proves path segments are encoded
    srv.reply("GET /api/v1/jobs/a%2Fb", { json: job({ status: "completed", result: { ok: 1 } }) });
    srv.reply("POST /api/v1/jobs/a%2Fb/cancel", { json: job({ status: "cancelled" }) });
    srv.reply("POST /api/v1/jobs/a%2Fb/retry", { status: 201, json: job({ id: "new-id" }) });
    srv.reply("GET /api/v1/jobs/a%2Fb/logs", {
      json: { logs: [{ line_number: 3, level: "info", message: "hi" }], count: 1 },
    });
    const c = createClient(srv.url, { apiKey: "k" });
    assert.deepEqual((await c.jobs.get(id)).data?.result, { ok: 1 });
    assert.equal((await c.jobs.cancel(id)).data?.status, "cancelled");
    assert.equal((await c.jobs.retry(id)).data?.id, "new-id");
    const logs = await c.jobs.getLogs(id, 2);
    assert.deepEqual(logs.data, [{ line_number: 3, level: "info", message: "hi" }]);
    assert.equal(srv.requests.at(-1)!.query.get("after_line"), "2");
    assert.deepEqual(srv.requests.map((r) => `${r.method} ${r.path}`), [
      "GET /api/v1/jobs/a%2Fb",
      "POST /api/v1/jobs/a%2Fb/cancel",
      "POST /api/v1/jobs/a%2Fb/retry",
      "GET /api/v1/jobs/a%2Fb/logs",
    ]);
  } finally {
    await srv.close();
  }
});

Deno.test("HTTP errors become { data: null, error } with message, status and code", async (t) => {
  const srv = new FakeServer();
  const c = createClient(srv.url, { apiKey: "k" });
  try {
    await t.step("JSON error body", async () => {
      srv.reply("POST /api/v1/jobs/x/cancel", {
        status: 409,
        json: { error: 'Cannot cancel job "x": it is completed', code: "invalid_state" },
      });
      const r = await c.jobs.cancel("x");
      assert.equal(r.data, null);
      assert.ok(r.error instanceof FluxbaseError);
      assert.equal(r.error.status, 409);
      assert.equal(r.error.code, "invalid_state");
      assert.equal(r.error.message, 'Cannot cancel job "x": it is completed');
    });
    await t.step("unknown route without a code falls back to a status code name", async () => {
      srv.reply("GET /api/v1/jobs/y", { status: 403, json: { error: "No" } });
      const r = await c.jobs.get("y");
      assert.equal(r.error?.status, 403);
      assert.equal(r.error?.code, "forbidden");
    });
    await t.step("non-JSON error body", async () => {
      srv.reply("GET /api/v1/jobs/z", { status: 502, text: "Bad Gateway from proxy" });
      const r = await c.jobs.get("z");
      assert.equal(r.error?.status, 502);
      assert.equal(r.error?.code, "server_error");
      assert.match(r.error!.message, /Bad Gateway from proxy/);
    });
    await t.step("2xx with a body that is not JSON", async () => {
      srv.reply("GET /api/v1/jobs/w", { status: 200, text: "<html>" });
      const r = await c.jobs.get("w");
      assert.equal(r.data, null);
      assert.equal(r.error?.code, "invalid_response");
      assert.equal(r.error?.status, 200);
    });
    await t.step("error serialises to a plain object", () => {
      const e = new FluxbaseError("m", 404, "not_found");
      assert.deepEqual(JSON.parse(JSON.stringify(e)), {
        message: "m",
        status: 404,
        code: "not_found",
      });
    });
  } finally {
    await srv.close();
  }
});

Deno.test("a network failure resolves with status 0 and code network_error, never throws", async () => {
  const srv = new FakeServer();
  const url = srv.url;
  await srv.close(); // nothing listens on this port any more
  const c = createClient(url, { apiKey: "k" });
  const r = await c.jobs.submit("x", {});
  assert.equal(r.data, null);
  assert.equal(r.error?.status, 0);
  assert.equal(r.error?.code, "network_error");
  assert.match(r.error!.message, /Cannot reach/);
  const a = await c.admin.jobs.listWorkers();
  assert.equal(a.error?.code, "network_error");
});

Deno.test("the fetch option carries every HTTP call, and a throwing fetch is an error result", async () => {
  const seen: string[] = [];
  const fakeFetch = (input: string | URL | Request, init?: RequestInit) => {
    seen.push(`${init?.method} ${String(input)}`);
    return Promise.resolve(Response.json({ workers: [] }));
  };
  const c = createClient("http://platform.internal", { serviceKey: "svc", fetch: fakeFetch });
  await c.admin.jobs.listWorkers();
  await c.jobs.get("j1");
  assert.deepEqual(seen, [
    "GET http://platform.internal/api/v1/admin/jobs/workers",
    "GET http://platform.internal/api/v1/jobs/j1",
  ]);
  const broken = createClient("http://x", {
    apiKey: "k",
    fetch: () => Promise.reject(new TypeError("host transport closed")),
  });
  const r = await broken.jobs.list();
  assert.equal(r.error?.code, "network_error");
  assert.match(r.error!.message, /host transport closed/);
});

Deno.test("createClient() rejects a URL that is not http(s)", () => {
  assert.throws(() => createClient("localhost:8080", {}), TypeError);
});

Deno.test("admin.jobs: paths, bodies and data shapes", async (t) => {
  const srv = new FakeServer();
  const c = createClient(srv.url, { serviceKey: "svc" });
  try {
    await t.step("listJobs maps filters and returns the array", async () => {
      srv.reply("GET /api/v1/admin/jobs/queue", {
        json: { jobs: [job()], total: 1, limit: 50, offset: 0 },
      });
      const r = await c.admin.jobs.listJobs({
        status: "running",
        namespace: "default",
        workerId: "w1",
        createdBy: "u1",
        jobName: "n",
      });
      assert.equal(r.data?.length, 1);
      assert.equal(r.count, 1);
      const q = srv.requests.at(-1)!.query;
      assert.deepEqual(Object.fromEntries(q), {
        status: "running",
        namespace: "default",
        worker_id: "w1",
        created_by: "u1",
        job_name: "n",
      });
    });
    await t.step("getStats passes the namespace and returns the counts", async () => {
      const stats = {
        pending: 1,
        running: 2,
        completed: 3,
        failed: 4,
        cancelled: 5,
        total: 15,
        avg_duration_ms: 12,
      };
      srv.reply("GET /api/v1/admin/jobs/stats", { json: stats });
      const r = await c.admin.jobs.getStats("default");
      assert.deepEqual(r.data, stats);
      assert.equal(srv.requests.at(-1)!.query.get("namespace"), "default");
    });
    await t.step("listWorkers adds current_jobs", async () => {
      srv.reply("GET /api/v1/admin/jobs/workers", {
        json: {
          workers: [{
            id: "w1",
            name: "worker-1",
            status: "active",
            current_job_count: 2,
            max_concurrent_jobs: 5,
          }],
        },
      });
      const r = await c.admin.jobs.listWorkers();
      assert.equal(r.data?.[0].current_jobs, 2);
      assert.equal(r.data?.[0].current_job_count, 2);
    });
    await t.step("job actions", async () => {
      for (const a of ["terminate", "cancel", "retry", "resubmit"] as const) {
        srv.reply(`POST /api/v1/admin/jobs/queue/j1/${a}`, { json: job({ id: `${a}-result` }) });
        const r = await c.admin.jobs[a]("j1");
        assert.equal(r.data?.id, `${a}-result`);
      }
      srv.reply("GET /api/v1/admin/jobs/queue/j1", { json: job({ id: "j1" }) });
      assert.equal((await c.admin.jobs.getJob("j1")).data?.id, "j1");
    });
    await t.step("functions CRUD", async () => {
      srv.reply("POST /api/v1/admin/jobs/functions", {
        status: 201,
        json: { name: "f", namespace: "default", enabled: true },
      });
      const created = await c.admin.jobs.create({
        name: "f",
        namespace: "default",
        code: "export function handler(){}",
        enabled: true,
      });
      assert.equal(created.data?.name, "f");
      assert.deepEqual(srv.requests.at(-1)!.body, {
        name: "f",
        namespace: "default",
        code: "export function handler(){}",
        enabled: true,
      });
      srv.reply("PUT /api/v1/admin/jobs/functions/default/f", {
        json: { name: "f", namespace: "default", enabled: false },
      });
      assert.equal(
        (await c.admin.jobs.update("default", "f", { enabled: false })).data?.enabled,
        false,
      );
      assert.deepEqual(srv.requests.at(-1)!.body, { enabled: false });
      srv.reply("GET /api/v1/admin/jobs/functions/default/f", {
        json: { name: "f", namespace: "default", enabled: false },
      });
      assert.equal((await c.admin.jobs.get("default", "f")).data?.name, "f");
      srv.reply("GET /api/v1/admin/jobs/functions", { json: { functions: [{ name: "f" }] } });
      assert.deepEqual((await c.admin.jobs.list("default")).data, [{ name: "f" }]);
      assert.equal(srv.requests.at(-1)!.query.get("namespace"), "default");
      srv.reply("DELETE /api/v1/admin/jobs/functions/default/f", { json: { deleted: true } });
      assert.equal((await c.admin.jobs.delete("default", "f")).error, null);
      srv.reply("GET /api/v1/admin/jobs/namespaces", { json: { namespaces: ["default", "etl"] } });
      assert.deepEqual((await c.admin.jobs.listNamespaces()).data, ["default", "etl"]);
    });
    await t.step("sync sends options in snake_case and returns the summary", async () => {
      const summary = { created: 2, updated: 1, deleted: 0, unchanged: 3, errors: 0 };
      srv.reply("POST /api/v1/admin/jobs/sync", { json: { summary, functions: [] } });
      const r = await c.admin.jobs.sync({
        namespace: "default",
        path: "./jobs",
        deleteMissing: true,
        dryRun: true,
      });
      assert.deepEqual(r.data?.summary, summary);
      assert.deepEqual(srv.requests.at(-1)!.body, {
        namespace: "default",
        path: "./jobs",
        options: { delete_missing: true, dry_run: true },
      });
    });
  } finally {
    await srv.close();
  }
});

Deno.test("jobs.waitFor() polls until a final state and reports updates", async () => {
  const srv = new FakeServer();
  try {
    srv.reply("GET /api/v1/jobs/j1", [
      { json: job({ id: "j1", status: "pending" }) },
      { json: job({ id: "j1", status: "running", progress: { percent: 50, message: "half" } }) },
      { json: job({ id: "j1", status: "completed", result: { n: 3 } }) },
    ]);
    const c = createClient(srv.url, { apiKey: "k" });
    const seen: string[] = [];
    const r = await c.jobs.waitFor("j1", {
      realtime: false,
      intervalMs: 20,
      onUpdate: (j) => seen.push(j.status),
    });
    assert.equal(r.error, null);
    assert.equal(r.data?.status, "completed");
    assert.deepEqual(r.data?.result, { n: 3 });
    assert.deepEqual(seen, ["pending", "running"]);
  } finally {
    await srv.close();
  }
});

Deno.test("jobs.waitFor() times out with code timeout, and stops on a 404", async () => {
  const srv = new FakeServer();
  try {
    srv.reply("GET /api/v1/jobs/slow", { json: job({ id: "slow", status: "running" }) });
    const c = createClient(srv.url, { apiKey: "k" });
    const t0 = Date.now();
    const r = await c.jobs.waitFor("slow", { realtime: false, intervalMs: 20, timeoutMs: 200 });
    assert.equal(r.data, null);
    assert.equal(r.error?.code, "timeout");
    assert.match(r.error!.message, /last status: running/);
    assert.ok(Date.now() - t0 < 1000);
    const gone = await c.jobs.waitFor("missing", {
      realtime: false,
      intervalMs: 20,
      timeoutMs: 2000,
    });
    assert.equal(gone.error?.status, 404);
  } finally {
    await srv.close();
  }
});
