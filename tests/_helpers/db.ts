/**
 * Real PostgreSQL for tests: TEST_DATABASE_URL or DATABASE_URL when set (CI may point it at
 * the machine's PostgreSQL), otherwise an embedded PostgreSQL under .fluxbase/test-pg.
 * Each test gets its own database, cloned from a template migrated once per schema version,
 * so files and tests never see each other's rows.
 */
import postgres from "postgres";
import { startEmbeddedPostgres } from "../../src/db/embedded.ts";
import { migrate, readMigrations } from "../../src/db/migrate.ts";
import type { Sql } from "../../src/db/pool.ts";

export interface TestDatabase {
  /** Connection URL of this test's own database. */
  url: string;
  /** A pool on it, connected as the server's own (superuser) login. */
  sql: Sql;
  /** Closes the pool and drops the database. Safe twice. */
  drop(): Promise<void>;
}

// A daemon shared by every test process (and reused by the next run), started at module
// load, outside any test, so no test's sanitizers count it. .ci/run stops it at the end.
const adminUrl = Deno.env.get("TEST_DATABASE_URL") ?? Deno.env.get("DATABASE_URL") ??
  (await startEmbeddedPostgres({
    dataDir: new URL("../../.fluxbase/test-pg", import.meta.url).pathname,
    detached: true,
  })).url;

let templateName: Promise<string> | null = null;

export function testAdminUrl(): string {
  return adminUrl;
}

export function urlForDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function template(): Promise<string> {
  const migrations = await readMigrations();
  const text = migrations.map((m) => m.sql).join("\n");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hash = Array.from(
    new Uint8Array(digest).slice(0, 6),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  const name = `fluxbase_template_${hash}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    // An advisory lock, so that concurrent test processes build the template once.
    await admin`select pg_advisory_lock(727200)`;
    const found = await admin`select 1 from pg_database where datname = ${name}`;
    if (found.length === 0) {
      await admin.unsafe(`create database "${name}"`);
      const tpl = postgres(urlForDatabase(adminUrl, name), { max: 1, onnotice: () => {} });
      try {
        await migrate(tpl, migrations);
      } catch (e) {
        await tpl.end();
        await admin.unsafe(`drop database "${name}"`);
        throw e;
      }
      await tpl.end();
    }
    await admin`select pg_advisory_unlock(727200)`;
  } finally {
    await admin.end();
  }
  return name;
}

/** A fresh, migrated database of its own. */
export async function createTestDatabase(): Promise<TestDatabase> {
  templateName ??= template();
  const tpl = await templateName;
  const name = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}" template "${tpl}"`);
  } finally {
    await admin.end();
  }
  const url = urlForDatabase(adminUrl, name);
  const sql = postgres(url, { max: 5, onnotice: () => {} });
  let dropped = false;
  return {
    url,
    sql,
    async drop() {
      if (dropped) return;
      dropped = true;
      await sql.end({ timeout: 1 });
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}
