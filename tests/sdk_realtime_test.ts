import assert from "node:assert/strict";
import { type ChannelStatus, createClient, type RealtimeChangePayload } from "../src/sdk/mod.ts";
import { FakeServer, type FakeSocket, job, sleep } from "./fixtures/sdk/fake_server.ts";

const fast = { reconnectDelayMs: 50, maxReconnectDelayMs: 400, ackTimeoutMs: 1000 };

function change(subscriptionId: unknown, record: Record<string, unknown>, type = "UPDATE") {
  return {
    type: "postgres_changes",
    payload: {
      type,
      schema: "jobs",
      table: "queue",
      commit_timestamp: "2025-01-01T00:00:01.000Z",
      record,
      old_record: { id: record.id, status: "pending", progress: null },
      subscription_id: subscriptionId,
    },
  };
}

async function until(pred: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(10);
  }
}

Deno.test("a client that never uses realtime never opens a socket", async () => {
  const srv = new FakeServer();
  try {
    srv.reply("POST /api/v1/jobs/submit", { status: 201, json: job() });
    const c = createClient(srv.url, { apiKey: "k" });
    await c.jobs.submit("process-data", {});
    c.realtime.channel("table:jobs.queue"); // a channel without subscribe() opens nothing
    await sleep(50);
    assert.equal(srv.upgradeAttempts.length, 0);
    assert.equal(c.realtime.connected, false);
  } finally {
    await srv.close();
  }
});

Deno.test("subscribe() reports SUBSCRIBED only after the ack, and routes events by subscription id", async () => {
  const srv = new FakeServer();
  let ack: (() => void) | null = null;
  srv.onWs = (msg, sock) => {
    if (msg.type === "subscribe") {
      ack = () => sock.send({ type: "ack", payload: { subscribed: true, subscription_id: 7 } });
    }
  };
  const c = createClient(srv.url, { apiKey: "anon", realtime: fast });
  try {
    const statuses: ChannelStatus[] = [];
    const events: RealtimeChangePayload[] = [];
    const ch = c.realtime.channel("table:jobs.queue")
      .on("UPDATE", (p) => events.push(p))
      .subscribe((s) => statuses.push(s));
    const sock = await srv.waitForSocket(1);
    assert.equal(sock.url.searchParams.get("token"), "anon");
    const sub = await sock.waitFor((m) => m.type === "subscribe");
    assert.equal(sub.channel, "table:jobs.queue");
    assert.deepEqual(sub.config, { event: "UPDATE", schema: "jobs", table: "queue" });
    await sleep(100);
    assert.deepEqual(statuses, [], "no SUBSCRIBED before the ack");
    ack!();
    await until(() => statuses.length === 1);
    assert.deepEqual(statuses, ["SUBSCRIBED"]);

    sock.send(change(7, { id: "j1", status: "running", progress: { percent: 40, message: "m" } }));
    sock.send(change(999, { id: "other" })); // another subscription's event: not ours
    sock.send(change(7, { id: "j1", status: "running" }, "INSERT")); // wrong event type
    await until(() => events.length >= 1);
    await sleep(50);
    assert.equal(events.length, 1);
    assert.equal(events[0].eventType, "UPDATE");
    assert.equal(events[0].schema, "jobs");
    assert.equal(events[0].table, "queue");
    assert.equal(events[0].commit_timestamp, "2025-01-01T00:00:01.000Z");
    assert.equal(events[0].new.progress.percent, 40);
    assert.equal(events[0].old.status, "pending");

    await ch.unsubscribe();
    assert.equal(statuses.at(-1), "CLOSED");
    const unsub = await sock.waitFor((m) => m.type === "unsubscribe");
    assert.equal(unsub.subscription_id, "7");
    await until(() => !sock.open); // last channel gone: socket closed
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("postgres_changes bindings send their filter; channels share one socket", async () => {
  const srv = new FakeServer();
  const c = createClient(srv.url, { serviceKey: "svc", realtime: fast });
  try {
    const got: string[] = [];
    const statuses: string[] = [];
    c.realtime.channel("jobs:running").on("postgres_changes", {
      event: "UPDATE",
      schema: "jobs",
      table: "queue",
      filter: "status=eq.running",
    }, (p) => got.push(`a:${p.new.id}`)).subscribe((s) => statuses.push(`a:${s}`));
    c.realtime.channel("table:jobs.queue").on("*", (p) => got.push(`b:${p.eventType}`))
      .subscribe((s) => statuses.push(`b:${s}`));
    const sock = await srv.waitForSocket(1);
    await until(() => statuses.length === 2);
    assert.deepEqual(statuses.sort(), ["a:SUBSCRIBED", "b:SUBSCRIBED"]);
    const subs = sock.received.filter((m) => m.type === "subscribe");
    assert.deepEqual(subs.map((m) => [m.channel, m.config]), [
      ["jobs:running", {
        event: "UPDATE",
        schema: "jobs",
        table: "queue",
        filter: "status=eq.running",
      }],
      ["table:jobs.queue", { event: "*", schema: "jobs", table: "queue" }],
    ]);
    assert.equal(srv.sockets.length, 1);
    assert.equal(srv.upgradeAttempts.length, 1);
    // Acks answer subscribes in order; events are routed by the id each ack gave.
    assert.equal(sock.acks.length, 2);
    sock.send(change(sock.acks[0], { id: "running-job" }));
    sock.send(change(sock.acks[1], { id: "x" }, "DELETE"));
    await until(() => got.length === 2);
    assert.deepEqual(got.sort(), ["a:running-job", "b:DELETE"]);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("a refused subscription reports CHANNEL_ERROR with the server's reason", async () => {
  const srv = new FakeServer();
  srv.onWs = (msg, sock) => {
    if (msg.type === "subscribe") sock.send({ type: "error", error: 'Unknown table "jobs.nope"' });
  };
  const c = createClient(srv.url, { apiKey: "k", realtime: fast });
  try {
    const out: Array<[string, string | undefined]> = [];
    c.realtime.channel("table:jobs.nope").on("*", () => {}).subscribe((s, err) =>
      out.push([s, err?.message])
    );
    await until(() => out.length === 1);
    assert.deepEqual(out, [["CHANNEL_ERROR", 'Unknown table "jobs.nope"']]);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("no ack in time reports TIMED_OUT", async () => {
  const srv = new FakeServer();
  srv.onWs = () => {};
  const c = createClient(srv.url, { apiKey: "k", realtime: { ...fast, ackTimeoutMs: 150 } });
  try {
    const out: string[] = [];
    c.realtime.channel("table:jobs.queue").on("*", () => {}).subscribe((s) => out.push(s));
    await until(() => out.length === 1);
    assert.deepEqual(out, ["TIMED_OUT"]);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("after the server drops the socket the client reconnects, resubscribes and reports the gap", async () => {
  const srv = new FakeServer();
  const c = createClient(srv.url, { apiKey: "k", realtime: fast });
  try {
    const statuses: Array<{ s: string; gap?: { from: string; to: string } }> = [];
    const events: string[] = [];
    c.realtime.channel("table:jobs.queue").on("UPDATE", (p) => events.push(p.new.id))
      .subscribe((s, _e, info) => statuses.push({ s, gap: info?.gap }));
    const first = await srv.waitForSocket(1);
    await until(() => statuses.length === 1);
    assert.equal(statuses[0].gap, undefined);
    first.close(1012, "restarting");
    const second = await srv.waitForSocket(2);
    const resub = await second.waitFor((m) => m.type === "subscribe");
    assert.equal(resub.channel, "table:jobs.queue");
    await until(() => statuses.length === 2);
    assert.equal(statuses[1].s, "SUBSCRIBED");
    assert.ok(statuses[1].gap, "the resubscribe reports a gap");
    assert.ok(Date.parse(statuses[1].gap!.from) <= Date.parse(statuses[1].gap!.to));
    // Events after the reconnect arrive under the new subscription id.
    const ack = second.received.find((m) => m.type === "subscribe");
    assert.ok(ack);
    // autoAck numbers subscriptions; the latest one is ours.
    second.send(change(latestSubId(second), { id: "after-reconnect" }));
    await until(() => events.length === 1);
    assert.deepEqual(events, ["after-reconnect"]);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("reconnect attempts back off exponentially while the server refuses", async () => {
  const srv = new FakeServer();
  const c = createClient(srv.url, {
    apiKey: "k",
    realtime: { reconnectDelayMs: 40, maxReconnectDelayMs: 1000, ackTimeoutMs: 5000 },
  });
  try {
    const statuses: string[] = [];
    c.realtime.channel("table:jobs.queue").on("*", () => {}).subscribe((s) => statuses.push(s));
    const first = await srv.waitForSocket(1);
    await until(() => statuses.length === 1);
    srv.refuseUpgrades = 4;
    first.close(1011, "crash");
    await srv.waitForSocket(2, 8000);
    await until(() => statuses.length === 2, 5000);
    const t = srv.upgradeAttempts.slice(1); // 4 refused + 1 accepted
    assert.equal(t.length, 5);
    const gaps = t.slice(1).map((x, i) => x - t[i]);
    // 40 ms doubling with +-25% jitter: each wait is longer than the one before.
    for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i] > gaps[i - 1], `gaps ${gaps}`);
    assert.ok(gaps[3] >= 40 * 8 * 0.75 - 5, `gaps ${gaps}`);
    assert.deepEqual(statuses, ["SUBSCRIBED", "SUBSCRIBED"]);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("setSession() sends access_token on the open socket and uses it for reconnects", async () => {
  const srv = new FakeServer();
  const c = createClient(srv.url, { apiKey: "anon", realtime: fast });
  try {
    const statuses: string[] = [];
    c.realtime.channel("table:jobs.queue").on("*", () => {}).subscribe((s) => statuses.push(s));
    const sock = await srv.waitForSocket(1);
    await until(() => statuses.length === 1);
    c.auth.setSession("user-token");
    const m = await sock.waitFor((x) => x.type === "access_token");
    assert.equal(m.token, "user-token");
    sock.close();
    const again = await srv.waitForSocket(2);
    assert.equal(again.url.searchParams.get("token"), "user-token");
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("a silent socket is declared dead and replaced", async () => {
  const srv = new FakeServer();
  const c = createClient(srv.url, {
    apiKey: "k",
    realtime: { ...fast, heartbeatIntervalMs: 50, deadAfterMs: 200 },
  });
  try {
    c.realtime.channel("table:jobs.queue").on("*", () => {}).subscribe();
    const first = await srv.waitForSocket(1);
    await first.waitFor((m) => m.type === "heartbeat");
    srv.onWs = () => {}; // from now on the first socket never answers
    await srv.waitForSocket(2, 3000);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("jobLogs() streams lines in order, drops repeats and fills a reconnect gap over REST", async () => {
  const srv = new FakeServer();
  srv.reply("GET /api/v1/jobs/j1/logs", (r) => {
    assert.equal(r.query.get("after_line"), "2");
    return {
      json: {
        logs: [
          { line_number: 3, level: "info", message: "three" },
          { line_number: 4, level: "warn", message: "four" },
        ],
        count: 2,
      },
    };
  });
  const c = createClient(srv.url, { apiKey: "k", realtime: fast });
  try {
    const lines: string[] = [];
    const h = c.realtime.jobLogs("j1", (l) => lines.push(`${l.line_number}:${l.message}`));
    const sock = await srv.waitForSocket(1);
    const sub = await sock.waitFor((m) => m.type === "subscribe_logs");
    assert.deepEqual(sub.config, { execution_id: "j1" });
    assert.equal(await h.ready, true);
    const log = (n: number, message: string, id = "j1") =>
      sock.send({
        type: "execution_log",
        payload: { execution_id: id, line_number: n, level: "info", message, timestamp: "t" },
      });
    log(1, "one");
    log(2, "two");
    log(2, "two again");
    log(9, "other job", "j2");
    await until(() => lines.length === 2);
    sock.close();
    const again = await srv.waitForSocket(2);
    await again.waitFor((m) => m.type === "subscribe_logs");
    await until(() => lines.length === 4);
    again.send({
      type: "execution_log",
      payload: {
        execution_id: "j1",
        line_number: 4,
        level: "warn",
        message: "four",
        timestamp: "t",
      },
    });
    again.send({
      type: "execution_log",
      payload: {
        execution_id: "j1",
        line_number: 5,
        level: "info",
        message: "five",
        timestamp: "t",
      },
    });
    await until(() => lines.length === 5);
    assert.deepEqual(lines, ["1:one", "2:two", "3:three", "4:four", "5:five"]);
    h.unsubscribe();
    await until(() => !again.open);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("without a WebSocket implementation subscribe() reports CHANNEL_ERROR realtime_unavailable", async () => {
  const g = globalThis as { WebSocket?: unknown };
  const saved = g.WebSocket;
  delete g.WebSocket;
  try {
    const c = createClient("http://127.0.0.1:9", { apiKey: "k" });
    assert.equal(c.realtime.available, false);
    const out: Array<[string, string | undefined]> = [];
    c.realtime.channel("table:jobs.queue").on("*", () => {}).subscribe((s, e) =>
      out.push([s, e?.code])
    );
    await until(() => out.length === 1);
    assert.deepEqual(out, [["CHANNEL_ERROR", "realtime_unavailable"]]);
    const errs: string[] = [];
    const h = c.realtime.jobLogs("j", () => {}, { onError: (e) => errs.push(e.code) });
    assert.equal(await h.ready, false);
    assert.deepEqual(errs, ["realtime_unavailable"]);
  } finally {
    g.WebSocket = saved;
  }
});

Deno.test("jobs.waitFor() resolves from the realtime feed", async () => {
  const srv = new FakeServer();
  srv.reply("GET /api/v1/jobs/j1", { json: job({ id: "j1", status: "running" }) });
  const c = createClient(srv.url, { apiKey: "k", realtime: fast });
  try {
    const p = c.jobs.waitFor("j1", { timeoutMs: 5000, intervalMs: 5000 });
    const sock = await srv.waitForSocket(1);
    const sub = await sock.waitFor((m) => m.type === "subscribe");
    assert.deepEqual(sub.config, {
      event: "UPDATE",
      schema: "jobs",
      table: "queue",
      filter: "id=eq.j1",
    });
    await until(() => srv.requests.length === 1); // the read after the ack
    sock.send(change(latestSubId(sock), { ...job({ id: "j1", status: "completed", result: 42 }) }));
    const r = await p;
    assert.equal(r.data?.status, "completed");
    assert.equal(r.data?.result, 42);
    await until(() => !sock.open); // waitFor unsubscribes; nothing else uses the socket
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

/** The subscription id autoAck gave the last subscribe on this socket. */
function latestSubId(sock: FakeSocket): string {
  return sock.lastAck;
}

Deno.test("acks of access_token and unsubscribe never satisfy a pending subscribe", async () => {
  const srv = new FakeServer();
  let pendingSub: Record<string, unknown> | null = null;
  let sockRef: FakeSocket | null = null;
  srv.onWs = (msg, sock) => {
    sockRef = sock;
    if (msg.type === "subscribe") {
      if (msg.channel === "first") {
        sock.send({
          type: "ack",
          ref: msg.ref,
          payload: { subscribed: true, subscription_id: "s1" },
        });
      } else pendingSub = msg; // answered later, by the test
    }
    if (msg.type === "access_token") {
      sock.send({ type: "ack", ref: msg.ref, payload: { type: "access_token", updated: true } });
    }
  };
  const c = createClient(srv.url, { apiKey: "k", realtime: fast });
  try {
    const a: string[] = [];
    const b: string[] = [];
    c.realtime.channel("first").on("*", () => {}).subscribe((s) => a.push(s));
    await until(() => a.length === 1);
    c.realtime.channel("second").on("*", () => {}).subscribe((s) => b.push(s));
    await until(() => pendingSub !== null);
    c.auth.setSession("new-token");
    await sockRef!.waitFor((m) => m.type === "access_token");
    await sleep(100);
    assert.deepEqual(b, [], "the access_token ack did not count as the subscribe's ack");
    sockRef!.send({
      type: "ack",
      ref: pendingSub!.ref,
      payload: { subscribed: true, subscription_id: "s2" },
    });
    await until(() => b.length === 1);
    assert.deepEqual(b, ["SUBSCRIBED"]);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("an error echoing a ref fails that subscription only", async () => {
  const srv = new FakeServer();
  srv.onWs = (msg, sock) => {
    if (msg.type !== "subscribe") return;
    if (msg.channel === "bad") {
      sock.send({
        type: "error",
        ref: msg.ref,
        error: 'Bad filter "x=zz.1"',
        code: "invalid_filter",
      });
    } else {sock.send({
        type: "ack",
        ref: msg.ref,
        payload: { subscribed: true, subscription_id: "ok" },
      });}
  };
  const c = createClient(srv.url, { apiKey: "k", realtime: fast });
  try {
    const good: string[] = [];
    const bad: Array<[string, string | undefined, string | undefined]> = [];
    c.realtime.channel("bad").on("postgres_changes", { event: "*", filter: "x=zz.1" }, () => {})
      .subscribe((s, e) => bad.push([s, e?.code, e?.message]));
    c.realtime.channel("good").on("*", () => {}).subscribe((s) => good.push(s));
    await until(() => good.length === 1 && bad.length === 1);
    assert.deepEqual(good, ["SUBSCRIBED"]);
    assert.deepEqual(bad, [["CHANNEL_ERROR", "invalid_filter", 'Bad filter "x=zz.1"']]);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});

Deno.test("system messages: events_may_be_missed reports a gap, token_expired a CHANNEL_ERROR", async () => {
  const srv = new FakeServer();
  const c = createClient(srv.url, { apiKey: "k", realtime: fast });
  try {
    const out: Array<[string, string | undefined, string | undefined]> = [];
    c.realtime.channel("table:jobs.queue").on("*", () => {}).on("INSERT", () => {})
      .subscribe((s, e, info) => out.push([s, e?.code, info?.gap?.reason]));
    const sock = await srv.waitForSocket(1);
    await until(() => out.length === 1);
    sock.send({
      type: "system",
      payload: { event: "events_may_be_missed", message: "listener reconnected", caught_up: true },
    });
    await until(() => out.length === 2);
    sock.send({ type: "system", payload: { event: "token_expired", message: "Token expired" } });
    await until(() => out.length === 3);
    assert.deepEqual(out, [
      ["SUBSCRIBED", undefined, undefined],
      ["SUBSCRIBED", undefined, "listener reconnected"],
      ["CHANNEL_ERROR", "token_expired", undefined],
    ]);
  } finally {
    c.realtime.disconnect();
    await srv.close();
  }
});
