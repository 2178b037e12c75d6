import assert from "node:assert/strict";
import { CronScheduler } from "../src/queue/scheduler.ts";
import { insertFunction } from "./fixtures/engine/db.ts";
import { createTestDatabase } from "./_helpers/db.ts";

Deno.test("cron: two schedulers fire each tick exactly once, as the system", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  const a = new CronScheduler({ sql });
  const b = new CronScheduler({ sql });
  try {
    await insertFunction(sql, {
      name: "every-second",
      code: "export function handler() {}",
      schedule: "* * * * * *",
      scheduleParams: { retention_days: 7 },
    });
    a.start();
    b.start();
    a.start(); // safe twice
    await new Promise((r) => setTimeout(r, 3500));
    await Promise.all([a.stop(), b.stop()]);
    const jobs = await sql<
      { created_by: string | null; user_role: string; payload: unknown; tick: Date }[]
    >`select created_by, user_role, payload, date_trunc('second', created_at) as tick
      from jobs.queue order by created_at`;
    assert.ok(jobs.length >= 2 && jobs.length <= 4, `${jobs.length} runs in 3.5 s`);
    const ticks = new Set(jobs.map((j) => j.tick.getTime()));
    assert.equal(ticks.size, jobs.length, "no tick ran twice");
    for (const j of jobs) {
      assert.equal(j.created_by, null);
      assert.equal(j.user_role, "service_role");
      assert.deepEqual(j.payload, { retention_days: 7 });
    }
    const [fn] = await sql`select next_run_at from jobs.functions where name = 'every-second'`;
    assert.ok(fn.next_run_at instanceof Date, "next_run_at is visible");
  } finally {
    await a.stop();
    await b.stop();
    await db.drop();
  }
});

Deno.test("cron: ticks missed while down run once, then the schedule resumes from now", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  const s = new CronScheduler({ sql });
  try {
    await insertFunction(sql, {
      name: "nightly",
      code: "export function handler() {}",
      schedule: "0 2 * * *",
    });
    // Down for three days: the last stored next run is long past.
    await sql`update jobs.functions set next_run_at = now() - interval '3 days'`;
    await s.tick();
    await s.tick();
    const [{ n }] = await sql`select count(*)::int as n from jobs.queue`;
    assert.equal(n, 1);
    const [fn] = await sql`select next_run_at from jobs.functions`;
    assert.ok(fn.next_run_at.getTime() > Date.now(), "next run is in the future");
    assert.ok(fn.next_run_at.getTime() - Date.now() <= 24 * 3600 * 1000);

    // Disabled: no next run; enabled again: a next run from now and no catch-up.
    await sql`update jobs.functions set enabled = false`;
    await s.tick();
    assert.equal((await sql`select next_run_at from jobs.functions`)[0].next_run_at, null);
    await sql`update jobs.functions set enabled = true`;
    await s.tick();
    const [again] = await sql`select next_run_at from jobs.functions`;
    assert.ok(again.next_run_at.getTime() > Date.now());
    assert.equal((await sql`select count(*)::int as n from jobs.queue`)[0].n, 1);
  } finally {
    await s.stop();
    await db.drop();
  }
});
