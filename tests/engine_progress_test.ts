import assert from "node:assert/strict";
import { insertFunction, submitJobs } from "./fixtures/engine/db.ts";
import { startEngine, waitForStatus } from "./fixtures/engine/harness.ts";

const CHATTY = `export async function handler(req, a, b, job) {
  for (let i = 1; i <= 100000; i++) {
    job.reportProgress(i / 1000, "step " + i, { i });
    if (i % 10000 === 0) await new Promise((r) => setTimeout(r, 50));
  }
  return "done";
}`;

Deno.test("100,000 progress reports make a handful of writes; the last one is written", async () => {
  const engine = await startEngine();
  const { sql } = engine.db;
  try {
    await insertFunction(sql, { name: "chatty", code: CHATTY });
    // Count writes through change capture, which is on while a hub has subscribers.
    await sql`insert into realtime.presence (hub_id, active_until)
      values (gen_random_uuid(), now() + interval '1 hour')`;
    const [id] = await submitJobs(sql, "chatty", [null]);
    const job = await waitForStatus(sql, id, ["completed"], 30_000);
    assert.deepEqual(job.progress, { percent: 100, message: "step 100000", data: { i: 100000 } });
    // Every write to the row is a change-capture row: claim, progress writes, completion.
    const [{ writes }] = await sql`select count(*)::int as writes from realtime.changes
      where type = 'UPDATE' and record->>'id' = ${id}`;
    assert.ok(writes >= 2 && writes < 40, `${writes} writes for 100,000 reports`);
  } finally {
    await engine.stop();
  }
});
