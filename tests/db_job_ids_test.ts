import assert from "node:assert/strict";
import { createTestDatabase } from "./_helpers/db.ts";

/** The version nibble, the variant bits and the millisecond timestamp of a UUID. */
function fields(id: string): { version: number; variant: number; ms: number } {
  const hex = id.replaceAll("-", "");
  return {
    version: parseInt(hex[12], 16),
    variant: parseInt(hex[16], 16) >> 2,
    ms: parseInt(hex.slice(0, 12), 16),
  };
}

Deno.test("job ids are time-ordered UUIDs (version 7), on any PostgreSQL version", async (t) => {
  const db = await createTestDatabase();
  try {
    await t.step("a submitted job's id carries its creation time", async () => {
      const before = Date.now();
      const [job] = await db.sql<{ id: string; created_ms: number }[]>`
        insert into jobs.queue (job_name) values ('ids')
        returning id::text, (extract(epoch from clock_timestamp()) * 1000)::float8 as created_ms`;
      const f = fields(job.id);
      assert.equal(f.version, 7);
      assert.equal(f.variant, 0b10);
      assert.ok(f.ms >= before - 1 && f.ms <= job.created_ms + 1, `${f.ms} outside the insert`);
    });

    await t.step("ids of later jobs sort after earlier ones", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const [job] = await db.sql<{ id: string }[]>`
          insert into jobs.queue (job_name) values ('ids') returning id::text`;
        ids.push(job.id);
        await new Promise((r) => setTimeout(r, 2));
      }
      assert.deepEqual([...ids].sort(), ids);
    });

    // PostgreSQL 18 has uuidv7(); older servers get jobs.uuid_v7_portable() as the default.
    await t.step("the fallback for PostgreSQL before 18 builds the same layout", async () => {
      const rows = await db.sql<{ id: string; now_ms: number }[]>`
        select jobs.uuid_v7_portable()::text as id,
               (extract(epoch from clock_timestamp()) * 1000)::float8 as now_ms
        from generate_series(1, 200)`;
      for (const row of rows) {
        const f = fields(row.id);
        assert.equal(f.version, 7, row.id);
        assert.equal(f.variant, 0b10, row.id);
        // Whole milliseconds, taken just before the clock_timestamp() of the same row.
        assert.ok(
          f.ms <= row.now_ms && row.now_ms - f.ms < 5,
          `${row.id}: ${f.ms} vs ${row.now_ms}`,
        );
      }
      assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, "ids are unique");
      const [{ v, num }] = await db.sql<{ v: string; num: number }[]>`
        select column_default as v, current_setting('server_version_num')::int as num
        from information_schema.columns
        where table_schema = 'jobs' and table_name = 'queue' and column_name = 'id'`;
      assert.equal(v, num >= 180000 ? "uuidv7()" : "jobs.uuid_v7_portable()");
    });
  } finally {
    await db.drop();
  }
});
