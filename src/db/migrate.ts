/**
 * Forward-only SQL migrations: `migrations/NNNN_name.sql`, applied in order at boot under an
 * advisory lock (several processes may boot at once), in one transaction with a savepoint
 * per file (a failure names its file and applies nothing), recorded in
 * `public.fluxbase_migrations`. Start-up refuses a gap in the files and a database that
 * is newer than the code.
 */
import type { Sql } from "./pool.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATION_FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;
/** Arbitrary but fixed: the key of the advisory lock that serialises migrators. */
const MIGRATION_LOCK_KEY = 7_262_005_001;

export const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url);

export async function readMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const match = MIGRATION_FILE.exec(entry.name);
    if (!entry.isFile || !match) continue;
    migrations.push({
      version: Number(match[1]),
      name: match[2],
      sql: await Deno.readTextFile(new URL(entry.name, dir)),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`Migration files have a gap: expected version ${i + 1}, found ${m.version}`);
    }
  });
  return migrations;
}

/** Applies pending migrations; returns the versions it applied. */
export async function migrate(sql: Sql, migrations?: Migration[]): Promise<number[]> {
  const all = migrations ?? await readMigrations();
  const applied: number[] = [];
  await sql.begin(async (tx) => {
    // Transaction-scoped lock: released however this ends.
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`create table if not exists public.fluxbase_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now())`;
    const rows = await tx<{ version: number }[]>`select version from public.fluxbase_migrations`;
    const done = new Set(rows.map((r) => r.version));
    const newest = Math.max(0, ...done);
    const known = all.length;
    if (newest > known) {
      throw new Error(
        `The database schema is at version ${newest}, newer than this server knows (${known}); ` +
          "upgrade the server instead of running an older one against it",
      );
    }
    for (const m of all) {
      if (done.has(m.version)) continue;
      // Savepoint per migration: a failure names its file and rolls back everything.
      try {
        await tx.savepoint(async (sp) => {
          await sp.unsafe(m.sql);
          await sp`insert into public.fluxbase_migrations (version, name)
                   values (${m.version}, ${m.name})`;
        });
      } catch (e) {
        throw new Error(
          `Migration ${String(m.version).padStart(4, "0")}_${m.name}.sql failed: ${
            (e as Error).message
          }`,
        );
      }
      applied.push(m.version);
    }
  });
  return applied;
}
