/**
 * Change capture runs only while a hub has table subscribers (migrations/0003_notify.sql): no
 * rows are written for nobody, and nothing committed after a subscribe's ack is missed.
 */
import assert from "node:assert/strict";
import { createTestDatabase } from "./_helpers/db.ts";
import { insertJob, startHub } from "./fixtures/realtime/harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "capture is off without subscribers and on from the first subscribe's ack",
  opts,
  async () => {
    const db = await createTestDatabase();
    const h = await startHub({ sql: db.sql, databaseUrl: db.url, pollIntervalMs: 100 });
    try {
      const count = async () =>
        (await db.sql`select count(*)::int as n from realtime.changes`)[0].n as number;
      await insertJob(db.sql, { created_by: "alice" });
      assert.equal(await count(), 0, "captured with nobody subscribed");

      const ws = await h.connect(await h.token({ sub: "alice" }));
      const ack = await ws.request({ type: "subscribe", channel: "table:jobs.queue" });
      assert.equal(ack.type, "ack");
      // Immediately after the ack: this insert must be delivered.
      const id = await insertJob(db.sql, { created_by: "alice" });
      const ev = await ws.next((m) => m.type === "postgres_changes");
      assert.equal(ev.payload.record.id, id);
      assert.equal(await count(), 1);

      const [row] = await db.sql`select count(*)::int as n from realtime.presence
      where active_until > now()`;
      assert.equal(row.n, 1);
      await h.hub.stop();
      const [after] = await db.sql`select count(*)::int as n from realtime.presence`;
      assert.equal(after.n, 0, "a stopped hub withdraws its presence");
    } finally {
      await h.stop();
      await db.drop();
    }
  },
);
