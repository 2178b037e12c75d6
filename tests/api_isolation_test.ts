/**
 * Two real users: neither can read, list, cancel, retry or see logs of the other's jobs
 * through any route, and the RLS policies themselves (not only the routes) enforce it.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { asUser } from "../src/db/as_user.ts";
import { type AuthContext, dbRoleFor } from "../src/auth/context.ts";
import { startTestServer } from "./_helpers/server.ts";

const jobsDir = new URL("./fixtures/api", import.meta.url).pathname;

function user(id: string, role = "authenticated"): AuthContext {
  return { role, dbRole: dbRoleFor(role), userId: id, email: null, claims: { sub: id, role } };
}

Deno.test("users cannot reach each other's jobs through any route", async (t) => {
  const server = await startTestServer({ jobsDir });
  try {
    const alice = await server.token({ sub: "alice" });
    const bob = await server.token({ sub: "bob" });
    const submitted = await server.request("POST", "/api/v1/jobs/submit", {
      token: alice,
      body: { job_name: "echo", payload: { secret: "alice's" } },
    });
    const id = submitted.body.id as string;
    await server.sql`insert into jobs.logs (job_id, line_number, message) values (${id}, 1, 'x')`;
    const failedJob = (await server.request("POST", "/api/v1/jobs/submit", {
      token: alice,
      body: { job_name: "echo" },
    })).body.id as string;
    await server.sql`update jobs.queue set status = 'failed' where id = ${failedJob}`;

    await t.step("bob gets 404 on get, cancel, retry, logs", async () => {
      for (
        const [method, path] of [
          ["GET", `/api/v1/jobs/${id}`],
          ["POST", `/api/v1/jobs/${id}/cancel`],
          ["POST", `/api/v1/jobs/${failedJob}/retry`],
          ["GET", `/api/v1/jobs/${id}/logs`],
        ]
      ) {
        const res = await server.request(method, path, { token: bob });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.doesNotMatch(JSON.stringify(res.body), /alice/);
      }
    });

    await t.step("bob's list is empty; alice's has her two jobs", async () => {
      const b = await server.request("GET", "/api/v1/jobs", { token: bob });
      assert.equal(b.body.total, 0);
      const a = await server.request("GET", "/api/v1/jobs", { token: alice });
      assert.equal(a.body.total, 2);
    });

    await t.step("bob's failed attempts changed nothing", async () => {
      const rows = await server.sql`select id, status from jobs.queue order by created_at`;
      assert.deepEqual(rows.map((r) => r.status), ["pending", "failed"]);
    });

    await t.step("bob cannot use the admin API (403)", async () => {
      const res = await server.request("GET", "/api/v1/admin/jobs/queue", { token: bob });
      assert.equal(res.status, 403);
    });

    await t.step("an admin sees alice's job; the anon key sees nothing", async () => {
      const admin = await server.token({ sub: "root", role: "dashboard_admin" });
      const res = await server.request("GET", `/api/v1/admin/jobs/queue/${id}`, { token: admin });
      assert.equal(res.status, 200);
      assert.equal(res.body.created_by, "alice");
      const anon = await server.request("GET", `/api/v1/jobs/${id}`, { token: server.anonKey });
      assert.equal(anon.status, 404);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("RLS policies enforce ownership on a pooled connection, even after a failed transaction", async (t) => {
  const server = await startTestServer({ jobsDir });
  // One connection: every transaction below reuses it, as a busy pool would.
  const pool = postgres(server.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [fn] = await pool`select id, version from jobs.functions where name = 'echo'`;
    for (const owner of ["alice", "alice", "bob"]) {
      await pool`insert into jobs.queue (function_id, function_version, job_name, created_by)
        values (${fn.id}, ${fn.version}, 'echo', ${owner})`;
    }

    await t.step("a transaction as bob that fails mid-way leaves no identity behind", async () => {
      await assert.rejects(() =>
        asUser(pool, user("bob"), async (tx) => {
          await tx`select count(*) from jobs.queue`;
          await tx`select 1/0`;
        })
      );
      const [state] = await pool`select current_user as who,
        coalesce(current_setting('request.jwt.claims', true), '') as claims`;
      assert.equal(state.who, "postgres");
      assert.equal(state.claims, "");
    });

    await t.step("as alice, SQL without any WHERE sees only alice's rows", async () => {
      const rows = await asUser(pool, user("alice"), (tx) => tx`select created_by from jobs.queue`);
      assert.deepEqual(rows.map((r) => r.created_by), ["alice", "alice"]);
    });

    await t.step("as bob, updating alice's jobs changes nothing", async () => {
      const updated = await asUser(
        pool,
        user("bob"),
        (tx) =>
          tx`update jobs.queue set status = 'cancelled' where created_by = 'alice' returning id`,
      );
      assert.equal(updated.length, 0);
    });

    await t.step("as alice, an update to anything but 'cancelled' is refused", async () => {
      await assert.rejects(
        () => asUser(pool, user("alice"), (tx) => tx`update jobs.queue set status = 'completed'`),
        /row-level security/,
      );
    });

    await t.step("as bob, inserting a job owned by alice is refused", async () => {
      await assert.rejects(
        () =>
          asUser(
            pool,
            user("bob"),
            (tx) => tx`insert into jobs.queue (job_name, created_by) values ('echo', 'alice')`,
          ),
        /row-level security/,
      );
    });

    await t.step("anon sees no rows; admin and service role see all", async () => {
      const anon = await asUser(pool, user("x", "anon"), (tx) => tx`select id from jobs.queue`);
      assert.equal(anon.length, 0);
      const admin = await asUser(
        pool,
        user("root", "admin"),
        (tx) => tx`select id from jobs.queue`,
      );
      assert.equal(admin.length, 3);
      const service = await asUser(
        pool,
        { ...user("svc", "service_role"), userId: null },
        (tx) => tx`select id from jobs.queue`,
      );
      assert.equal(service.length, 3);
    });

    await t.step("users cannot read function code or workers", async () => {
      const fns = await asUser(pool, user("alice"), (tx) => tx`select code from jobs.functions`);
      assert.equal(fns.length, 0);
    });
  } finally {
    await pool.end();
    await server.stop();
  }
});
