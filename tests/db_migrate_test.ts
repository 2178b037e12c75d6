import assert from "node:assert/strict";
import { createTestDatabase } from "./_helpers/db.ts";
import { migrate, readMigrations } from "../src/db/migrate.ts";

Deno.test("migrate() applies nothing twice and records every version", async () => {
  const db = await createTestDatabase();
  try {
    const all = await readMigrations();
    assert.deepEqual(await migrate(db.sql), []);
    const rows = await db.sql<{ version: number }[]>`
      select version from public.fluxbase_migrations order by version`;
    assert.deepEqual(rows.map((r) => r.version), all.map((m) => m.version));
  } finally {
    await db.drop();
  }
});

Deno.test("migrate() refuses a database newer than the code", async () => {
  const db = await createTestDatabase();
  try {
    await db.sql`insert into public.fluxbase_migrations (version, name) values (9999, 'future')`;
    await assert.rejects(
      () => migrate(db.sql),
      /schema is at version 9999, newer than this server/,
    );
  } finally {
    await db.drop();
  }
});

Deno.test("readMigrations() rejects a gap in the numbering", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/0001_a.sql`, "select 1");
    await Deno.writeTextFile(`${dir}/0003_c.sql`, "select 1");
    await assert.rejects(
      () => readMigrations(new URL(`file://${dir}/`)),
      /gap: expected version 2/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failing migration names its file and leaves nothing applied", async () => {
  const db = await createTestDatabase();
  try {
    const all = await readMigrations();
    const broken = [...all, {
      version: all.length + 1,
      name: "broken",
      sql: "select from nowhere",
    }];
    await assert.rejects(() => migrate(db.sql, broken), /_broken\.sql failed/);
    const rows = await db.sql`select 1 from public.fluxbase_migrations where name = 'broken'`;
    assert.equal(rows.length, 0);
  } finally {
    await db.drop();
  }
});
