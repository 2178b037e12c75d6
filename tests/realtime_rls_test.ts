import assert from "node:assert/strict";
import { createTokenVerifier, signToken, type VerifiedToken } from "../src/auth/jwt.ts";
import { asUser } from "../src/db/as_user.ts";
import { canSee, eventRow } from "../src/realtime/rls.ts";
import { JOBS_QUEUE } from "../src/realtime/tables.ts";
import { createTestDatabase } from "./_helpers/db.ts";
import { insertJob, SECRET, sleep, startHub } from "./fixtures/realtime/harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The kinds of subscriber the policies distinguish. */
const SUBSCRIBERS: Record<string, Record<string, unknown>> = {
  owner: { sub: "alice", role: "authenticated" },
  other: { sub: "bob", role: "authenticated" },
  custom_role_owner: { sub: "alice", role: "editor" },
  admin: { sub: "root", role: "admin" },
  dashboard_admin: { sub: "dash", role: "dashboard_admin" },
  service_role: { role: "service_role" },
  anon: { role: "anon" },
};

async function contexts(): Promise<Record<string, VerifiedToken>> {
  const verifier = createTokenVerifier({ secret: SECRET });
  const out: Record<string, VerifiedToken> = {};
  for (const [name, claims] of Object.entries(SUBSCRIBERS)) {
    out[name] = await verifier.verify(await signToken(SECRET, claims, "1h"));
  }
  return out;
}

Deno.test("rls: the hub's decision agrees with the database's policies", opts, async (t) => {
  const db = await createTestDatabase();
  try {
    const sql = db.sql;
    // Capture is on while a hub has subscribers (migrations/0003_notify.sql); stand in for one.
    await sql`insert into realtime.presence (hub_id, active_until)
      values (gen_random_uuid(), now() + interval '1 hour')`;
    for (const owner of ["alice", "bob", "root", null, ""]) {
      await insertJob(sql, { created_by: owner });
      await insertJob(sql, { created_by: owner, status: "running" });
    }
    const auths = await contexts();
    const visibleBefore: Record<string, string[]> = {};
    const changes = async (type: string) =>
      await sql<
        { type: string; record: Record<string, unknown>; old_record: Record<string, unknown> }[]
      >`
        select type, record, old_record from realtime.changes where type = ${type} order by id`;

    for (const type of ["INSERT", "UPDATE", "DELETE"]) {
      await t.step(`${type} events`, async () => {
        if (type === "UPDATE") await sql`update jobs.queue set priority = priority + 1`;
        if (type === "DELETE") await sql`delete from jobs.queue`;
        const rows = await changes(type);
        assert.equal(rows.length, 10);
        for (const [name, auth] of Object.entries(auths)) {
          const hub = rows
            .map((r) => eventRow(r.type, r.record, r.old_record)!)
            .filter((row) => canSee(auth, JOBS_QUEUE, row))
            .map((row) => row.id as string)
            .sort();
          if (type !== "DELETE") {
            // The database's answer for the rows as they now are.
            const dbIds = (await asUser(sql, auth, (tx) =>
              tx<{ id: string }[]>`
              select id from jobs.queue`)).map((r) => r.id).sort();
            assert.deepEqual(hub, dbIds, `${name} ${type}`);
            visibleBefore[name] = dbIds;
          } else {
            // Deleted rows cannot be selected; they must match what was visible just before.
            assert.deepEqual(hub, visibleBefore[name], `${name} DELETE`);
          }
        }
      });
    }
    assert.equal(visibleBefore.owner.length, 2);
    assert.equal(visibleBefore.custom_role_owner.length, 2);
    assert.equal(visibleBefore.other.length, 2);
    assert.equal(visibleBefore.admin.length, 10);
    assert.equal(visibleBefore.dashboard_admin.length, 10);
    assert.equal(visibleBefore.service_role.length, 10);
    assert.equal(visibleBefore.anon.length, 0);
  } finally {
    await db.drop();
  }
});

Deno.test("rls over sockets: who receives insert, update and delete events", opts, async () => {
  const db = await createTestDatabase();
  const h = await startHub({ sql: db.sql, databaseUrl: db.url });
  try {
    const clients: Record<string, Awaited<ReturnType<typeof h.connect>>> = {};
    for (const [name, claims] of Object.entries(SUBSCRIBERS)) {
      const token = await signToken(SECRET, claims, "1h");
      clients[name] = await h.connect(token);
      await clients[name].subscribe("table:jobs.queue");
    }
    const alices = await insertJob(db.sql, { created_by: "alice" });
    await db.sql`update jobs.queue set status = 'running' where id = ${alices}`;
    await db.sql`delete from jobs.queue where id = ${alices}`;
    const bobs = await insertJob(db.sql, { created_by: "bob" });

    // The admin sees all four events; once they arrived, every fan-out before them is done.
    for (let i = 0; i < 4; i++) await clients.admin.next((m) => m.type === "postgres_changes");
    await h.hub.poke();
    await sleep(100);
    const got = (name: string) =>
      clients[name].drain().map((m) =>
        `${m.payload.type}:${
          (m.payload.record ?? m.payload.old_record).id === alices ? "alice" : "bob"
        }`
      );
    const own = ["INSERT:alice", "UPDATE:alice", "DELETE:alice"];
    assert.deepEqual(got("owner"), own);
    assert.deepEqual(got("custom_role_owner"), own);
    assert.deepEqual(got("other"), ["INSERT:bob"]);
    assert.deepEqual(got("dashboard_admin"), [...own, "INSERT:bob"]);
    assert.deepEqual(got("service_role"), [...own, "INSERT:bob"]);
    assert.deepEqual(got("anon"), []);
    assert.ok(bobs);
  } finally {
    await h.stop();
    await db.drop();
  }
});
