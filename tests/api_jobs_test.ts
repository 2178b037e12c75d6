import assert from "node:assert/strict";
import { startTestServer, type TestServer } from "./_helpers/server.ts";

const jobsDir = new URL("./fixtures/api", import.meta.url).pathname;

async function setup() {
  const server = await startTestServer({ jobsDir });
  const alice = await server.token({ sub: "alice", email: "alice@example.com" });
  return { server, alice };
}

async function submit(server: TestServer, token: string, body: unknown) {
  return await server.request("POST", "/api/v1/jobs/submit", { token, body });
}

Deno.test("POST /api/v1/jobs/submit", async (t) => {
  const { server, alice } = await setup();
  try {
    await t.step("creates a pending job owned by the caller (201)", async () => {
      const res = await submit(server, alice, {
        job_name: "echo",
        payload: { items: [1, 2, 3] },
        priority: 5,
      });
      assert.equal(res.status, 201);
      assert.equal(res.body.status, "pending");
      assert.equal(res.body.job_name, "echo");
      assert.equal(res.body.namespace, "default");
      assert.deepEqual(res.body.payload, { items: [1, 2, 3] });
      assert.equal(res.body.priority, 5);
      assert.equal(res.body.created_by, "alice");
      assert.equal(res.body.user_email, "alice@example.com");
      assert.equal(res.body.user_role, "authenticated");
      assert.equal(res.body.retry_count, 0);
      assert.equal(res.body.max_retries, 3);
      assert.deepEqual(res.body.progress, { percent: 0, message: "" });
      assert.match(res.body.id, /^[0-9a-f-]{36}$/);
    });

    await t.step("keeps scheduled_at and makes the job claimable only then", async () => {
      const at = new Date(Date.now() + 3_600_000).toISOString();
      const res = await submit(server, alice, { job_name: "echo", scheduled_at: at });
      assert.equal(res.status, 201);
      assert.equal(new Date(res.body.scheduled_at).toISOString(), at);
      const [row] = await server.sql`select run_after from jobs.queue where id = ${res.body.id}`;
      assert.equal((row.run_after as Date).toISOString(), at);
    });

    await t.step("unknown function: 404 function_not_found", async () => {
      const res = await submit(server, alice, { job_name: "nope" });
      assert.equal(res.status, 404);
      assert.equal(res.body.code, "function_not_found");
      assert.match(res.body.error, /"nope" not found in namespace "default"/);
    });

    await t.step("disabled function: 403 function_disabled", async () => {
      const res = await submit(server, alice, { job_name: "switched-off" });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, "function_disabled");
    });

    await t.step("require-role: 403 naming the roles; admin and service role pass", async () => {
      const res = await submit(server, alice, { job_name: "admin-only" });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, "insufficient_role");
      assert.deepEqual(res.body.details.required_roles, ["admin", "dashboard_admin"]);
      const admin = await server.token({ sub: "root", role: "admin" });
      assert.equal((await submit(server, admin, { job_name: "admin-only" })).status, 201);
      assert.equal(
        (await submit(server, server.serviceKey, { job_name: "admin-only" })).status,
        201,
      );
    });

    await t.step("on_behalf_of: only the service role", async () => {
      const res = await submit(server, alice, { job_name: "echo", on_behalf_of: "bob" });
      assert.equal(res.status, 403);
      const ok = await submit(server, server.serviceKey, {
        job_name: "echo",
        on_behalf_of: { user_id: "bob", email: "bob@example.com" },
      });
      assert.equal(ok.status, 201);
      assert.equal(ok.body.created_by, "bob");
      assert.equal(ok.body.user_email, "bob@example.com");
    });

    await t.step("anon key: 401, nothing inserted", async () => {
      const before = await server.sql`select count(*)::int as n from jobs.queue`;
      const res = await submit(server, server.anonKey, { job_name: "echo" });
      assert.equal(res.status, 401);
      const after = await server.sql`select count(*)::int as n from jobs.queue`;
      assert.equal(after[0].n, before[0].n);
    });

    await t.step("bad input: 400 naming the field, nothing inserted", async () => {
      const before = await server.sql`select count(*)::int as n from jobs.queue`;
      const cases: [unknown, RegExp][] = [
        [{}, /"job_name"/],
        [{ job_name: "" }, /"job_name"/],
        [{ job_name: "echo", priority: "high" }, /"priority"/],
        [{ job_name: "echo", priority: 1.5 }, /"priority"/],
        [{ job_name: "echo", scheduled_at: "tomorrow" }, /"scheduled_at"/],
        [{ job_name: "echo", namespace: "a b" }, /"namespace"/],
        [{ job_name: "echo", surprise: 1 }, /surprise|Unrecognized/],
        ["{not json", /not valid JSON/],
        [[1, 2], /body|expected object/],
      ];
      for (const [body, message] of cases) {
        const res = await submit(server, alice, body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(typeof res.body.error, "string");
        assert.match(res.body.error, message);
      }
      const after = await server.sql`select count(*)::int as n from jobs.queue`;
      assert.equal(after[0].n, before[0].n);
    });

    await t.step("body over the limit: 413", async () => {
      const big = "x".repeat(1024 * 1024 + 10);
      const res = await submit(server, alice, { job_name: "echo", payload: big });
      assert.equal(res.status, 413);
      assert.equal(res.body.code, "payload_too_large");
    });
  } finally {
    await server.stop();
  }
});

Deno.test("GET, list, cancel, retry and logs of one's own jobs", async (t) => {
  const { server, alice } = await setup();
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await submit(server, alice, { job_name: "echo", payload: { i } })).body.id);
    }

    await t.step("GET /:id returns the job with JSON fields as values", async () => {
      const res = await server.request("GET", `/api/v1/jobs/${ids[0]}`, { token: alice });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.payload, { i: 0 });
    });

    await t.step("GET /:id of a malformed or unknown id: 404", async () => {
      for (const id of ["not-a-uuid", crypto.randomUUID()]) {
        const res = await server.request("GET", `/api/v1/jobs/${id}`, { token: alice });
        assert.equal(res.status, 404);
        assert.equal(res.body.code, "job_not_found");
      }
    });

    await t.step("list: newest first, with total, limit and offset", async () => {
      const res = await server.request("GET", "/api/v1/jobs?limit=2&offset=0", { token: alice });
      assert.equal(res.status, 200);
      assert.equal(res.body.total, 3);
      assert.equal(res.body.limit, 2);
      assert.equal(res.body.offset, 0);
      assert.deepEqual(res.body.jobs.map((j: { id: string }) => j.id), [ids[2], ids[1]]);
      const page2 = await server.request("GET", "/api/v1/jobs?limit=2&offset=2", { token: alice });
      assert.deepEqual(page2.body.jobs.map((j: { id: string }) => j.id), [ids[0]]);
      const beyond = await server.request("GET", "/api/v1/jobs?offset=10", { token: alice });
      assert.equal(beyond.body.total, 3);
      assert.deepEqual(beyond.body.jobs, []);
    });

    await t.step("list filters and bad filters", async () => {
      const res = await server.request("GET", "/api/v1/jobs?status=pending&job_name=echo", {
        token: alice,
      });
      assert.equal(res.body.total, 3);
      const none = await server.request("GET", "/api/v1/jobs?status=completed", { token: alice });
      assert.equal(none.body.total, 0);
      for (const q of ["status=done", "limit=0", "limit=5000", "offset=-1", "limit=abc"]) {
        const bad = await server.request("GET", `/api/v1/jobs?${q}`, { token: alice });
        assert.equal(bad.status, 400, q);
      }
    });

    await t.step("cancel a pending job, then 409 on a second cancel", async () => {
      const res = await server.request("POST", `/api/v1/jobs/${ids[0]}/cancel`, { token: alice });
      assert.equal(res.status, 200);
      assert.equal(res.body.status, "cancelled");
      assert.ok(res.body.completed_at);
      const again = await server.request("POST", `/api/v1/jobs/${ids[0]}/cancel`, { token: alice });
      assert.equal(again.status, 409);
      assert.equal(again.body.code, "invalid_job_state");
      assert.match(again.body.error, /already cancelled/);
    });

    await t.step(
      "retry a cancelled job: a new pending job, same function, payload, user",
      async () => {
        const res = await server.request("POST", `/api/v1/jobs/${ids[0]}/retry`, { token: alice });
        assert.equal(res.status, 201);
        assert.notEqual(res.body.id, ids[0]);
        assert.equal(res.body.status, "pending");
        assert.equal(res.body.job_name, "echo");
        assert.deepEqual(res.body.payload, { i: 0 });
        assert.equal(res.body.created_by, "alice");
      },
    );

    await t.step("retry of a pending job: 409", async () => {
      const res = await server.request("POST", `/api/v1/jobs/${ids[1]}/retry`, { token: alice });
      assert.equal(res.status, 409);
    });

    await t.step("cancel of a completed job: 409, row unchanged", async () => {
      await server.sql`update jobs.queue set status = 'completed', result = '{"n":1}'
        where id = ${ids[2]}`;
      const res = await server.request("POST", `/api/v1/jobs/${ids[2]}/cancel`, { token: alice });
      assert.equal(res.status, 409);
      const [row] = await server.sql`select status, result from jobs.queue where id = ${ids[2]}`;
      assert.equal(row.status, "completed");
      assert.deepEqual(row.result, { n: 1 });
    });

    await t.step("logs: after_line pages, count", async () => {
      await server.sql`insert into jobs.logs (job_id, line_number, level, message)
        values (${ids[1]}, 1, 'info', 'one'), (${ids[1]}, 2, 'error', 'two'),
               (${ids[1]}, 3, 'info', 'three')`;
      const res = await server.request("GET", `/api/v1/jobs/${ids[1]}/logs?after_line=1`, {
        token: alice,
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.count, 2);
      assert.deepEqual(
        res.body.logs.map((l: { line_number: number; level: string; message: string }) => [
          l.line_number,
          l.level,
          l.message,
        ]),
        [[2, "error", "two"], [3, "info", "three"]],
      );
    });
  } finally {
    await server.stop();
  }
});

Deno.test("GET /health reports the database", async () => {
  const server = await startTestServer({ jobsDir });
  try {
    const res = await server.request("GET", "/health");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: "ok", database: "ok" });
    const missing = await server.request("GET", "/api/v1/nope", { token: server.serviceKey });
    assert.equal(missing.status, 404);
  } finally {
    await server.stop();
  }
});

Deno.test("CORS: browsers may call the API from another origin", async () => {
  const server = await startTestServer({ jobsDir });
  try {
    const preflight = await fetch(`${server.url}/api/v1/jobs/submit`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    await preflight.body?.cancel();
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
    assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /authorization/);
    const res = await fetch(`${server.url}/api/v1/jobs`, {
      headers: { origin: "https://app.example" },
    });
    await res.body?.cancel();
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  } finally {
    await server.stop();
  }
});

Deno.test("FLUXBASE_CORS_ORIGINS limits API calls and realtime upgrades to those origins", async () => {
  const server = await startTestServer({
    jobsDir,
    env: { FLUXBASE_CORS_ORIGINS: "https://app.example" },
  });
  try {
    const allowed = await fetch(`${server.url}/api/v1/jobs`, {
      headers: { origin: "https://app.example" },
    });
    await allowed.body?.cancel();
    assert.equal(allowed.headers.get("access-control-allow-origin"), "https://app.example");
    const other = await fetch(`${server.url}/api/v1/jobs`, {
      headers: { origin: "https://evil.example" },
    });
    await other.body?.cancel();
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    const evilSocket = await server.request("GET", "/realtime", {
      headers: { origin: "https://evil.example", upgrade: "websocket" },
    });
    assert.equal(evilSocket.status, 403);
    // An allowed origin reaches the hub, which then wants a token.
    const noToken = await server.request("GET", "/realtime", {
      headers: { origin: "https://app.example", upgrade: "websocket" },
    });
    assert.equal(noToken.status, 401);
  } finally {
    await server.stop();
  }
});

Deno.test("FLUXBASE_JOBS_ENABLED=false: the jobs API answers 503 jobs_disabled", async () => {
  const server = await startTestServer({ jobsDir, env: { FLUXBASE_JOBS_ENABLED: "false" } });
  try {
    const token = await server.token({ sub: "alice" });
    const res = await server.request("POST", "/api/v1/jobs/submit", {
      token,
      body: { job_name: "echo" },
    });
    assert.equal(res.status, 503);
    assert.equal(res.body.code, "jobs_disabled");
    const [{ n }] = await server.sql`select count(*)::int as n from jobs.queue`;
    assert.equal(n, 0);
    assert.equal((await server.request("GET", "/health")).status, 200);
  } finally {
    await server.stop();
  }
});
