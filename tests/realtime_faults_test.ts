import assert from "node:assert/strict";
import { createTestDatabase } from "./_helpers/db.ts";
import { insertJob, sleep, startHub } from "./fixtures/realtime/harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function setup(realtime = {}, pollIntervalMs = 5000) {
  const db = await createTestDatabase();
  const h = await startHub({ sql: db.sql, databaseUrl: db.url, realtime, pollIntervalMs });
  return {
    db,
    h,
    async teardown() {
      await h.stop();
      await db.drop();
    },
  };
}

Deno.test(
  "listener: killed connection reconnects, catches up, and tells subscribers",
  opts,
  async () => {
    const { db, h, teardown } = await setup();
    try {
      const ws = await h.connect(await h.token({ sub: "alice" }));
      await ws.subscribe("table:jobs.queue");
      const before = await insertJob(db.sql, { created_by: "alice" });
      assert.equal((await ws.next((m) => m.type === "postgres_changes")).payload.record.id, before);

      const killed = await db.sql`
      select pg_terminate_backend(pid) from pg_stat_activity
      where application_name = 'fluxbase-realtime-listener' and datname = current_database()`;
      assert.equal(killed.length, 1);
      // Written while the listener is down: no notification reaches the hub.
      const during = await insertJob(db.sql, { created_by: "alice" });

      const sys = await ws.next((m) => m.type === "system", 8000);
      assert.equal(sys.payload.event, "events_may_be_missed");
      assert.equal(sys.payload.caught_up, true);
      const caught = await ws.next((m) => m.type === "postgres_changes", 3000);
      assert.equal(caught.payload.record.id, during, "the row written meanwhile is caught up");

      // And the feed is live again, by notification (the poll interval is 5 s).
      const started = Date.now();
      const after = await insertJob(db.sql, { created_by: "alice" });
      assert.equal((await ws.next((m) => m.type === "postgres_changes")).payload.record.id, after);
      assert.ok(Date.now() - started < 2000);
    } finally {
      await teardown();
    }
  },
);

Deno.test(
  "listener: a change whose id commits after a higher id is still delivered",
  opts,
  async () => {
    const { db, h, teardown } = await setup({}, 200);
    try {
      const ws = await h.connect(await h.token({ sub: "alice" }));
      await ws.subscribe("table:jobs.queue");
      // Transaction A takes the lower change id but commits after B.
      const slow = db.sql.reserve();
      const a = await slow;
      await a`begin`;
      const [{ id: first }] = await a<{ id: string }[]>`
      insert into jobs.queue (job_name, created_by) values ('a', 'alice') returning id`;
      const second = await insertJob(db.sql, { created_by: "alice" });
      assert.equal((await ws.next((m) => m.type === "postgres_changes")).payload.record.id, second);
      await a`commit`;
      a.release();
      const late = await ws.next((m) => m.type === "postgres_changes", 3000);
      assert.equal(late.payload.record.id, first);
    } finally {
      await teardown();
    }
  },
);

Deno.test("listener: large rows arrive whole (no 8000-byte notify limit)", opts, async () => {
  const { db, h, teardown } = await setup();
  try {
    const ws = await h.connect(await h.token({ sub: "alice" }));
    await ws.subscribe("table:jobs.queue", { event: "UPDATE" });
    const id = await insertJob(db.sql, { created_by: "alice" });
    const logs = "x".repeat(200_000);
    await db.sql`update jobs.queue set logs = ${logs}, result = ${db.sql.json({ big: logs })}
      where id = ${id}`;
    const ev = await ws.next((m) => m.type === "postgres_changes");
    assert.equal(ev.payload.record.logs.length, 200_000);
    assert.equal(ev.payload.record.result.big.length, 200_000);
  } finally {
    await teardown();
  }
});

Deno.test("slow consumer: disconnected with a reason once its buffer is full", opts, async () => {
  const { db, h, teardown } = await setup({ maxBufferedBytes: 256 * 1024 });
  try {
    const token = await h.token({ sub: "alice" });
    const port = new URL(h.url).port;
    // A raw client that completes the handshake, subscribes, then never reads again.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
    await conn.write(new TextEncoder().encode(
      `GET /realtime?token=${token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Sec-WebSocket-Version: 13\r\n\r\n`,
    ));
    await conn.write(
      maskedText(JSON.stringify({ type: "subscribe", channel: "table:jobs.queue" })),
    );
    await sleep(200);
    assert.equal(h.hub.stats().connections, 1);
    assert.equal(h.hub.stats().subscriptions, 1);
    const id = await insertJob(db.sql, { created_by: "alice" });
    const logs = "y".repeat(100_000);
    // Kernel socket buffers absorb a few MB before the server side starts to queue.
    for (let i = 0; i < 200 && h.hub.stats().connections > 0; i++) {
      await db.sql`update jobs.queue set logs = ${logs + i} where id = ${id}`;
      await h.hub.poke();
    }
    assert.equal(h.hub.stats().connections, 0, "the slow consumer was dropped");
    assert.equal(h.hub.stats().subscriptions, 0);
    // A healthy client on the same hub still gets events.
    const ws = await h.connect(token);
    await ws.subscribe("table:jobs.queue");
    await db.sql`update jobs.queue set status = 'running' where id = ${id}`;
    assert.equal(
      (await ws.next((m) => m.type === "postgres_changes")).payload.record.status,
      "running",
    );
    conn.close();
  } finally {
    await teardown();
  }
});

Deno.test("dead socket: a peer that never answers pings is closed", opts, async () => {
  const { h, teardown } = await setup({ pingIntervalMs: 1000 });
  try {
    const token = await h.token({ sub: "alice" });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(h.url).port) });
    await conn.write(new TextEncoder().encode(
      `GET /realtime?token=${token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Sec-WebSocket-Version: 13\r\n\r\n`,
    ));
    // Keep reading (so nothing is slow) but never send a pong.
    const reader = (async () => {
      const buf = new Uint8Array(65536);
      try {
        while ((await conn.read(buf)) !== null) { /* discard */ }
      } catch { /* closed */ }
    })();
    await sleep(300);
    assert.equal(h.hub.stats().connections, 1);
    const deadline = Date.now() + 5000;
    while (h.hub.stats().connections > 0 && Date.now() < deadline) await sleep(100);
    assert.equal(h.hub.stats().connections, 0, "closed after missing pongs");
    conn.close();
    await reader;
  } finally {
    await teardown();
  }
});

/** A client-to-server text frame (clients must mask; RFC 6455 5.3). */
function maskedText(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const header = payload.length < 126 ? [0x81, 0x80 | payload.length] : [
    0x81,
    0x80 | 126,
    payload.length >> 8,
    payload.length & 0xff,
  ];
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const out = new Uint8Array(header.length + 4 + payload.length);
  out.set(header, 0);
  out.set(mask, header.length);
  for (let i = 0; i < payload.length; i++) {
    out[header.length + 4 + i] = payload[i] ^ mask[i % 4];
  }
  return out;
}
