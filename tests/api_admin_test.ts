import assert from "node:assert/strict";
import { startTestServer } from "./_helpers/server.ts";

const jobsDir = new URL("./fixtures/api", import.meta.url).pathname;

Deno.test("admin queue routes", async (t) => {
  const server = await startTestServer({ jobsDir });
  try {
    const admin = await server.token({ sub: "root", role: "admin" });
    const alice = await server.token({ sub: "alice" });
    const bob = await server.token({ sub: "bob" });
    const ids: string[] = [];
    for (const token of [alice, alice, bob]) {
      const res = await server.request("POST", "/api/v1/jobs/submit", {
        token,
        body: { job_name: "echo", payload: { n: ids.length } },
      });
      ids.push(res.body.id);
    }

    await t.step("list everyone's jobs, filter by created_by and status", async () => {
      const all = await server.request("GET", "/api/v1/admin/jobs/queue", { token: admin });
      assert.equal(all.status, 200);
      assert.equal(all.body.total, 3);
      const bobs = await server.request("GET", "/api/v1/admin/jobs/queue?created_by=bob", {
        token: admin,
      });
      assert.deepEqual(bobs.body.jobs.map((j: { id: string }) => j.id), [ids[2]]);
      const bad = await server.request("GET", "/api/v1/admin/jobs/queue?worker_id=nope", {
        token: admin,
      });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /worker_id/);
    });

    await t.step(
      "terminate a pending job: cancelled with a reason; 409 the second time",
      async () => {
        const res = await server.request("POST", `/api/v1/admin/jobs/queue/${ids[0]}/terminate`, {
          token: admin,
        });
        assert.equal(res.status, 200);
        assert.equal(res.body.status, "cancelled");
        assert.equal(res.body.error_message, "Terminated by admin");
        const again = await server.request("POST", `/api/v1/admin/jobs/queue/${ids[0]}/terminate`, {
          token: admin,
        });
        assert.equal(again.status, 409);
      },
    );

    await t.step("retry and resubmit keep the owner", async () => {
      const retried = await server.request("POST", `/api/v1/admin/jobs/queue/${ids[0]}/retry`, {
        token: admin,
      });
      assert.equal(retried.status, 201);
      assert.equal(retried.body.created_by, "alice");
      await server.sql`update jobs.queue set status = 'completed' where id = ${ids[2]}`;
      const resub = await server.request("POST", `/api/v1/admin/jobs/queue/${ids[2]}/resubmit`, {
        token: admin,
      });
      assert.equal(resub.status, 201);
      assert.equal(resub.body.created_by, "bob");
      assert.deepEqual(resub.body.payload, { n: 2 });
      const retryCompleted = await server.request(
        "POST",
        `/api/v1/admin/jobs/queue/${ids[2]}/retry`,
        { token: admin },
      );
      assert.equal(retryCompleted.status, 409);
    });

    await t.step("stats count per status", async () => {
      const res = await server.request("GET", "/api/v1/admin/jobs/stats", { token: admin });
      assert.equal(res.status, 200);
      assert.deepEqual(
        [
          res.body.pending,
          res.body.running,
          res.body.completed,
          res.body.failed,
          res.body.cancelled,
          res.body.total,
        ],
        [3, 0, 1, 0, 1, 5],
      );
      const other = await server.request("GET", "/api/v1/admin/jobs/stats?namespace=other", {
        token: admin,
      });
      assert.equal(other.body.total, 0);
    });

    await t.step("workers and namespaces", async () => {
      await server.sql`insert into jobs.workers (name, hostname, pid, max_concurrent_jobs,
        current_job_count) values ('w1', 'host', 42, 5, 2)`;
      const res = await server.request("GET", "/api/v1/admin/jobs/workers", { token: admin });
      assert.equal(res.status, 200);
      assert.equal(res.body.workers.length, 1);
      assert.equal(res.body.workers[0].current_job_count, 2);
      assert.equal(res.body.workers[0].current_jobs, 2);
      const ns = await server.request("GET", "/api/v1/admin/jobs/namespaces", { token: admin });
      assert.deepEqual(ns.body.namespaces, ["default"]);
    });

    await t.step("users get 403 on every admin route", async () => {
      for (
        const path of [
          "/queue",
          "/stats",
          "/workers",
          "/namespaces",
          "/functions",
          `/queue/${ids[1]}`,
        ]
      ) {
        const res = await server.request("GET", `/api/v1/admin/jobs${path}`, { token: alice });
        assert.equal(res.status, 403, path);
      }
    });
  } finally {
    await server.stop();
  }
});

Deno.test("admin function routes: create, get, update, disable, delete, sync", async (t) => {
  const server = await startTestServer({ jobsDir });
  try {
    const svc = server.serviceKey;
    const code = `/**\n * @fluxbase:timeout 42\n * @fluxbase:max-retries 1\n */\n` +
      `export function handler() { return 1; }\n`;

    await t.step(
      "create parses annotations (201), then an identical create is unchanged",
      async () => {
        const res = await server.request("POST", "/api/v1/admin/jobs/functions", {
          token: svc,
          body: { name: "made", namespace: "default", code, enabled: true },
        });
        assert.equal(res.status, 201);
        assert.equal(res.body.timeout_seconds, 42);
        assert.equal(res.body.max_retries, 1);
        assert.equal(res.body.version, 1);
        const again = await server.request("POST", "/api/v1/admin/jobs/functions", {
          token: svc,
          body: { name: "made", code },
        });
        assert.equal(again.status, 200);
        assert.equal(again.body.action, "unchanged");
        assert.equal(again.body.version, 1);
      },
    );

    await t.step("bad annotations: 400 naming the line, nothing stored", async () => {
      const res = await server.request("POST", "/api/v1/admin/jobs/functions", {
        token: svc,
        body: { name: "broken", code: "// @fluxbase:timeout soon\nexport function handler() {}" },
      });
      assert.equal(res.status, 400);
      assert.equal(res.body.code, "invalid_annotations");
      assert.match(res.body.error, /:1:.*timeout/);
      const get = await server.request("GET", "/api/v1/admin/jobs/functions/default/broken", {
        token: svc,
      });
      assert.equal(get.status, 404);
    });

    await t.step("a path grant that covers the data directory is refused (400)", async () => {
      for (const grant of ["/", server.config.dataDir, `${server.config.dataDir}/..`]) {
        const res = await server.request("POST", "/api/v1/admin/jobs/functions", {
          token: svc,
          body: {
            name: "nosy",
            code: `// @fluxbase:allow-read ${grant}\nexport function handler() {}`,
          },
        });
        assert.equal(res.status, 400, grant);
        assert.match(res.body.error, /includes the server's data directory/);
      }
      const narrow = await server.request("POST", "/api/v1/admin/jobs/functions", {
        token: svc,
        body: {
          name: "nosy",
          code: "// @fluxbase:allow-read /usr/share\nexport function handler() {}",
        },
      });
      assert.equal(narrow.status, 201);
    });

    await t.step("get returns code; update bumps the version; disable blocks submit", async () => {
      const got = await server.request("GET", "/api/v1/admin/jobs/functions/default/made", {
        token: svc,
      });
      assert.equal(got.body.code, code);
      const updated = await server.request("PUT", "/api/v1/admin/jobs/functions/default/made", {
        token: svc,
        body: { code: code.replace("return 1", "return 2") },
      });
      assert.equal(updated.status, 200);
      assert.equal(updated.body.version, 2);
      const disabled = await server.request("PUT", "/api/v1/admin/jobs/functions/default/made", {
        token: svc,
        body: { enabled: false },
      });
      assert.equal(disabled.body.enabled, false);
      const submit = await server.request("POST", "/api/v1/jobs/submit", {
        token: svc,
        body: { job_name: "made" },
      });
      assert.equal(submit.status, 403);
      const empty = await server.request("PUT", "/api/v1/admin/jobs/functions/default/made", {
        token: svc,
        body: {},
      });
      assert.equal(empty.status, 400);
    });

    await t.step("delete, then 404", async () => {
      const del = await server.request("DELETE", "/api/v1/admin/jobs/functions/default/made", {
        token: svc,
      });
      assert.equal(del.status, 200);
      const again = await server.request("DELETE", "/api/v1/admin/jobs/functions/default/made", {
        token: svc,
      });
      assert.equal(again.status, 404);
    });

    await t.step(
      "sync a list: created/updated/unchanged/deleted, dry run changes nothing",
      async () => {
        const body = (jobs: unknown[], options = {}) => ({ namespace: "batch", jobs, options });
        const first = await server.request("POST", "/api/v1/admin/jobs/sync", {
          token: svc,
          body: body([{ name: "a", code }, { name: "b", code }]),
        });
        assert.equal(first.status, 200);
        assert.deepEqual(first.body.summary, {
          created: 2,
          updated: 0,
          deleted: 0,
          unchanged: 0,
          errors: 0,
        });
        const dry = await server.request("POST", "/api/v1/admin/jobs/sync", {
          token: svc,
          body: body([{ name: "a", code: code + "\n" }], { delete_missing: true, dry_run: true }),
        });
        assert.deepEqual(dry.body.summary, {
          created: 0,
          updated: 1,
          deleted: 1,
          unchanged: 0,
          errors: 0,
        });
        const list = await server.request("GET", "/api/v1/admin/jobs/functions?namespace=batch", {
          token: svc,
        });
        assert.deepEqual(
          list.body.functions.map((f: { name: string; version: number }) => [f.name, f.version]),
          [["a", 1], ["b", 1]],
        );
        const real = await server.request("POST", "/api/v1/admin/jobs/sync", {
          token: svc,
          body: body([{ name: "a", code }, {
            name: "c",
            code: "// @fluxbase:bogus 1\nexport function handler() {}",
          }], { delete_missing: true }),
        });
        assert.deepEqual(real.body.summary, {
          created: 0,
          updated: 0,
          deleted: 1,
          unchanged: 1,
          errors: 1,
        });
        assert.deepEqual(real.body.deleted, ["b"]);
      },
    );

    await t.step("sync from a path: inside FLUXBASE_JOBS_DIR only", async () => {
      const inside = await server.request("POST", "/api/v1/admin/jobs/sync", {
        token: svc,
        body: { namespace: "default", path: jobsDir },
      });
      assert.equal(inside.status, 200);
      assert.equal(inside.body.summary.unchanged, 3);
      for (const path of ["/etc", `${jobsDir}/..`, "/nonexistent"]) {
        const res = await server.request("POST", "/api/v1/admin/jobs/sync", {
          token: svc,
          body: { namespace: "default", path },
        });
        assert.ok([400, 403].includes(res.status), path);
      }
    });
  } finally {
    await server.stop();
  }
});
