import assert from "node:assert/strict";
import { createTestDatabase } from "./_helpers/db.ts";
import { insertJob, type Msg, sleep, startHub } from "./fixtures/realtime/harness.ts";

const ALICE = "user-alice";

async function setup(realtime = {}) {
  const db = await createTestDatabase();
  const h = await startHub({ sql: db.sql, databaseUrl: db.url, realtime });
  return {
    ...h,
    async teardown() {
      await h.stop();
      await db.drop();
    },
  };
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("realtime protocol: each client message gets its reply", opts, async (t) => {
  const h = await setup();
  try {
    const ws = await h.connect(await h.token({ sub: ALICE }));

    await t.step("subscribe to table:jobs.queue without config acks all events", async () => {
      const reply = await ws.request({ type: "subscribe", channel: "table:jobs.queue" });
      assert.equal(reply.type, "ack");
      assert.equal(reply.payload.subscribed, true);
      assert.equal(reply.payload.schema, "jobs");
      assert.equal(reply.payload.table, "queue");
      assert.equal(reply.payload.event, "*");
      assert.match(reply.payload.subscription_id, /^[0-9a-f-]{36}$/);
      const id = await insertJob(h.sql, { created_by: ALICE });
      const ev = await ws.next((m) => m.type === "postgres_changes");
      assert.equal(ev.payload.type, "INSERT");
      assert.equal(ev.payload.record.id, id);
      assert.equal(ev.payload.old_record, null);
      assert.equal(ev.payload.subscription_id, reply.payload.subscription_id);
      assert.equal(ev.channel, "table:jobs.queue");
      assert.ok(!Number.isNaN(Date.parse(ev.payload.commit_timestamp)));
      await h.sql`update jobs.queue set status = 'running',
        progress = '{"percent": 50, "message": "half"}' where id = ${id}`;
      const up = await ws.next((m) => m.type === "postgres_changes");
      assert.equal(up.payload.type, "UPDATE");
      assert.deepEqual(up.payload.record.progress, { percent: 50, message: "half" });
      assert.equal(up.payload.record.status, "running");
      assert.equal(up.payload.old_record.status, "pending");
      assert.deepEqual(up.payload.old_record.progress, { percent: 0, message: "" });
      const reply2 = await ws.request({
        type: "unsubscribe",
        subscription_id: reply.payload.subscription_id,
      });
      assert.deepEqual(reply2.payload, {
        unsubscribed: true,
        subscription_id: reply.payload.subscription_id,
      });
      await h.sql`update jobs.queue set status = 'completed' where id = ${id}`;
      await h.hub.poke();
      await sleep(100);
      assert.deepEqual(ws.drain(), []);
    });

    await t.step("heartbeat is answered with a heartbeat", async () => {
      ws.send({ type: "heartbeat" });
      const m = await ws.next((m) => m.type === "heartbeat");
      assert.deepEqual(m, { type: "heartbeat" });
    });

    await t.step("bad input gets an error and the socket stays open", async () => {
      const cases: [unknown, string][] = [
        ["not json", "invalid_message"],
        [{ type: "dance" }, "unknown_message_type"],
        [{ type: "subscribe" }, "invalid_message"],
        [{ type: "subscribe", channel: "table:public.todos" }, "unknown_table"],
        [{ type: "subscribe", channel: "my-channel" }, "invalid_channel"],
        [{
          type: "subscribe",
          channel: "x",
          config: { schema: "jobs", table: "queue", filter: "nope=eq.1" },
        }, "invalid_filter"],
        [
          { type: "subscribe", channel: "table:jobs.queue", config: { event: "TRUNCATE" } },
          "invalid_event",
        ],
        [{ type: "unsubscribe", subscription_id: "missing" }, "unknown_subscription"],
        [{ type: "access_token", token: "garbage" }, "invalid_token"],
        [{ type: "subscribe_logs", config: {} }, "invalid_message"],
        [{ type: "subscribe_logs", config: { execution_id: crypto.randomUUID() } }, "not_found"],
      ];
      for (const [msg, code] of cases) {
        ws.send(msg);
        const m = await ws.next((m) => m.type === "error");
        assert.equal(m.code, code, `${JSON.stringify(msg)} -> ${JSON.stringify(m)}`);
        assert.equal(typeof m.error, "string");
      }
      assert.equal(ws.socket.readyState, WebSocket.OPEN);
      ws.send({ type: "heartbeat" });
      await ws.next((m) => m.type === "heartbeat");
    });

    await t.step(
      "the spec's filter example: config with event, schema, table, filter",
      async () => {
        const reply = await ws.request({
          type: "subscribe",
          channel: "jobs:running",
          config: { event: "UPDATE", schema: "jobs", table: "queue", filter: "status=eq.running" },
        });
        assert.equal(reply.payload.filter, "status=eq.running");
        assert.equal(reply.payload.event, "UPDATE");
        const id = await insertJob(h.sql, { created_by: ALICE });
        await h.sql`update jobs.queue set status = 'running' where id = ${id}`;
        await h.sql`update jobs.queue set status = 'completed' where id = ${id}`;
        const ev = await ws.next((m) => m.type === "postgres_changes");
        assert.equal(ev.channel, "jobs:running");
        assert.equal(ev.payload.record.status, "running");
        await h.hub.poke();
        await sleep(100);
        assert.deepEqual(ws.drain(), [], "the INSERT and the completed UPDATE were filtered out");
        ws.send({ type: "unsubscribe" });
        const all = await ws.next((m) => m.type === "ack");
        assert.deepEqual(all.payload, { unsubscribed: true });
      },
    );

    await t.step("subscribe_logs streams log lines of one's own job", async () => {
      const id = await insertJob(h.sql, { created_by: ALICE });
      const reply = await ws.request({ type: "subscribe_logs", config: { execution_id: id } });
      assert.equal(reply.type, "ack");
      assert.equal(reply.payload.execution_id, id);
      await h.sql`insert into jobs.logs (job_id, line_number, level, message)
        values (${id}, 1, 'info', 'hello'), (${id}, 2, 'error', 'boom')`;
      const a = await ws.next((m) => m.type === "execution_log");
      const b = await ws.next((m) => m.type === "execution_log");
      assert.deepEqual(
        [a.payload.line_number, a.payload.level, a.payload.message],
        [1, "info", "hello"],
      );
      assert.deepEqual([b.payload.line_number, b.payload.message], [2, "boom"]);
      assert.equal(a.payload.execution_id, id);
      assert.equal(a.payload.subscription_id, reply.payload.subscription_id);
      assert.ok(!Number.isNaN(Date.parse(a.payload.timestamp)));
    });

    await t.step("subscribe_logs on another user's job is refused as not found", async () => {
      const other = await insertJob(h.sql, { created_by: "user-bob" });
      const reply = await ws.request({ type: "subscribe_logs", config: { execution_id: other } });
      assert.equal(reply.type, "error");
      assert.equal(reply.code, "not_found");
    });

    await t.step("access_token replaces the token; another user's token is refused", async () => {
      const reply = await ws.request({
        type: "access_token",
        token: await h.token({ sub: ALICE, expiresIn: "2h" }),
      });
      assert.equal(reply.type, "ack");
      assert.equal(reply.payload.updated, true);
      assert.ok(reply.payload.expires_at > Date.now() / 1000 + 3600);
      const bad = await ws.request({
        type: "access_token",
        token: await h.token({ sub: "user-bob" }),
      });
      assert.equal(bad.code, "token_user_mismatch");
    });
  } finally {
    await h.teardown();
  }
});

Deno.test("realtime upgrade: a missing or invalid token is refused with 401", opts, async () => {
  const h = await setup();
  try {
    const http = h.url.replace("ws://", "http://");
    const headers = { upgrade: "websocket", connection: "Upgrade" };
    const none = await fetch(http, { headers });
    assert.equal(none.status, 401);
    assert.equal((await none.json()).error, "Missing access token");
    const bad = await fetch(`${http}?token=abc.def.ghi`, { headers });
    assert.equal(bad.status, 401);
    assert.match((await bad.json()).error, /Invalid access token/);
    const expired = await fetch(
      `${http}?token=${await h.token({ sub: ALICE, expiresIn: -10 })}`,
      { headers },
    );
    assert.equal(expired.status, 401);
    await expired.body?.cancel();
    const plain = await fetch(http);
    assert.equal(plain.status, 426);
    await plain.body?.cancel();
  } finally {
    await h.teardown();
  }
});

Deno.test(
  "realtime: an expired token stops events and says so; a new token resumes",
  opts,
  async () => {
    const h = await setup();
    try {
      const ws = await h.connect(await h.token({ sub: ALICE, expiresIn: "2s" }));
      await ws.subscribe("table:jobs.queue");
      const first = await insertJob(h.sql, { created_by: ALICE });
      assert.equal((await ws.next((m) => m.type === "postgres_changes")).payload.record.id, first);
      const sys = await ws.next((m) => m.type === "system", 4000);
      assert.equal(sys.payload.event, "token_expired");
      await insertJob(h.sql, { created_by: ALICE });
      await h.hub.poke();
      await sleep(150);
      assert.deepEqual(ws.drain(), [], "no events after expiry");
      assert.equal(ws.socket.readyState, WebSocket.OPEN);
      const ack = await ws.request({ type: "access_token", token: await h.token({ sub: ALICE }) });
      assert.equal(ack.type, "ack");
      const third = await insertJob(h.sql, { created_by: ALICE });
      assert.equal((await ws.next((m) => m.type === "postgres_changes")).payload.record.id, third);
    } finally {
      await h.teardown();
    }
  },
);

Deno.test("realtime: connections per user are capped", opts, async () => {
  const h = await setup({ maxConnectionsPerUser: 2 });
  try {
    const token = await h.token({ sub: ALICE });
    const a = await h.connect(token);
    const b = await h.connect(token);
    const c = await h.connect(token);
    const closed = await c.waitClosed();
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /Too many connections for this user \(limit 2\)/);
    const said: Msg = await c.next((m) => m.type === "system").catch(() => ({}));
    assert.equal(said.payload?.event, "disconnecting");
    assert.equal(h.hub.stats().connections, 2);
    // Another user is not affected; a slot frees when a socket closes.
    const other = await h.connect(await h.token({ sub: "user-bob" }));
    assert.equal(other.socket.readyState, WebSocket.OPEN);
    a.close();
    await a.waitClosed();
    await sleep(50);
    const d = await h.connect(token);
    await d.subscribe("table:jobs.queue");
    assert.equal(d.socket.readyState, WebSocket.OPEN);
    b.close();
  } finally {
    await h.teardown();
  }
});

Deno.test("realtime: server heartbeats arrive every ping interval", opts, async () => {
  const h = await setup({ pingIntervalMs: 200 });
  try {
    const ws = await h.connect(await h.token({ sub: ALICE }));
    await ws.next((m) => m.type === "heartbeat", 1000);
    await ws.next((m) => m.type === "heartbeat", 1000);
  } finally {
    await h.teardown();
  }
});
