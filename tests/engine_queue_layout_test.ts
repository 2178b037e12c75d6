/**
 * The queue's layout (migrations/0013_hot_queue.sql): claims and completions update jobs.queue's
 * rows in place, claimable jobs are entries in jobs.pending, running jobs are counted in
 * jobs.running_counts. Both side tables are kept by a trigger, so every way a job changes state
 * must leave them in agreement with jobs.queue.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase, testAdminUrl, urlForDatabase } from "./_helpers/db.ts";
import { migrate, readMigrations } from "../src/db/migrate.ts";
import {
  jobClaimAvailable,
  jobCompleteManyIfRunning,
  jobFailManyIfRunning,
  jobReleaseManyIfRunning,
} from "../src/queue/job_queries.ts";
import { workerRescueById } from "../src/queue/worker_queries.ts";
import { insertFunction, newWorker, submitJobs } from "./fixtures/engine/db.ts";
import type { Sql } from "../src/db/pool.ts";

const POLICY = { retryBaseDelayMs: 0, retryMaxDelayMs: 0, retryJitter: 0 };

/** Running jobs per namespace and worker: as counted, and as jobs.queue has them. */
async function runningBothWays(sql: Sql) {
  const counted = await sql`
    select namespace, worker_id::text, sum(jobs.running_delta(c))::int as n
    from jobs.running_counts c group by 1, 2 having sum(jobs.running_delta(c)) <> 0
    order by 1, 2`;
  const actual = await sql`
    select namespace, jobs.running_worker(worker_id)::text as worker_id, count(*)::int as n
    from jobs.queue where status = 'running' group by 1, 2 order by 1, 2`;
  return { counted: [...counted], actual: [...actual] };
}

Deno.test("claims and completions write no index entry: their updates stay on the row's page", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await insertFunction(sql, { name: "f", code: "x" });
    await submitJobs(sql, "f", Array.from({ length: 200 }, (_, i) => i));
    const me = await newWorker(sql);
    // Row updates and HOT updates of jobs.queue by `write`, from the statistics of its
    // connection not yet reported (they may include earlier transactions: hence the difference).
    const updates = async <T>(tx: Sql, write: () => Promise<T>) => {
      const counters = async () =>
        (await tx<{ updated: number; hot: number }[]>`
          select pg_stat_get_xact_tuples_updated('jobs.queue'::regclass)::int as updated,
                 pg_stat_get_xact_tuples_hot_updated('jobs.queue'::regclass)::int as hot`)[0];
      const before = await counters();
      const value = await write();
      const after = await counters();
      return { value, updated: after.updated - before.updated, hot: after.hot - before.hot };
    };
    const claim = await sql.begin((tx) => updates(tx, () => jobClaimAvailable(tx, me, 200, 1000)));
    const claimed = claim.value;
    assert.equal(claimed.length, 200);
    assert.deepEqual([claim.updated, claim.hot], [200, 200]);
    const complete = await sql.begin((tx) =>
      updates(tx, () =>
        jobCompleteManyIfRunning(
          tx,
          me,
          claimed.map((j) => ({ id: j.id, result: { ok: true }, progress: null, logs: null })),
        ))
    );
    assert.equal(complete.value, 200);
    assert.deepEqual([complete.updated, complete.hot], [200, 200]);
    // The claim took the entries; nothing is claimable or running any more.
    const [{ entries }] = await sql`select count(*)::int as entries from jobs.pending`;
    assert.equal(entries, 0);
    assert.deepEqual(await runningBothWays(sql), { counted: [], actual: [] });
  } finally {
    await db.drop();
  }
});

Deno.test("a claim passes over entries of jobs cancelled, deleted or rescheduled while pending and still fills up", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await insertFunction(sql, { name: "f", code: "x" });
    // The first ten by priority go stale in three ways; the claim must reach past them.
    const stale = await submitJobs(sql, "f", Array.from({ length: 10 }, (_, i) => i), {
      priority: 9,
    });
    const good = await submitJobs(sql, "f", Array.from({ length: 20 }, (_, i) => i));
    await sql`update jobs.queue set status = 'cancelled', completed_at = now()
              where id in ${sql(stale.slice(0, 4))}`;
    await sql`delete from jobs.queue where id in ${sql(stale.slice(4, 7))}`;
    await sql`update jobs.queue set run_after = now() + interval '1 hour'
              where id in ${sql(stale.slice(7))}`;
    const me = await newWorker(sql);

    const claimed = await jobClaimAvailable(sql, me, 5, 1000);
    // One statement, one created_at: the id decides (in submission order only where
    // PostgreSQL 18's uuidv7() numbers ids within a millisecond).
    assert.deepEqual(claimed.map((j) => j.id), [...good].sort().slice(0, 5));
    // Every stale entry it met is gone; the rescheduled jobs keep the entry of their new time.
    const entries = await sql<{ id: string; later: boolean }[]>`
      select id, run_after > now() as later from jobs.pending where id in ${sql(stale)}`;
    assert.deepEqual(
      entries.map((e) => [e.id, e.later]).sort(),
      stale.slice(7).map((id) => [id, true]).sort(),
    );
    assert.equal((await jobClaimAvailable(sql, me, 100, 1000)).length, 15);
    assert.equal((await jobClaimAvailable(sql, me, 100, 1000)).length, 0);
    const [row] = await sql`select status from jobs.queue where id = ${stale[7]}`;
    assert.equal(row.status, "pending");
  } finally {
    await db.drop();
  }
});

Deno.test("running counts follow every way a job enters or leaves running", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await insertFunction(sql, { name: "fa", namespace: "a", code: "x", maxRetries: 3 });
    await insertFunction(sql, { name: "fb", namespace: "b", code: "x", maxRetries: 0 });
    await submitJobs(sql, "fa", Array.from({ length: 10 }, (_, i) => i));
    await submitJobs(sql, "fb", Array.from({ length: 10 }, (_, i) => i));
    const w1 = await newWorker(sql);
    const w2 = await newWorker(sql);
    const one = (await jobClaimAvailable(sql, w1, 12, 1000)).map((j) => j.id);
    assert.equal((await jobClaimAvailable(sql, w2, 8, 1000)).length, 8);
    let both = await runningBothWays(sql);
    assert.deepEqual(both.counted, both.actual);
    assert.equal(both.actual.reduce((sum, r) => sum + r.n, 0), 20);

    // Completed, failed with an attempt left (pending again) and without (failed), released,
    // cancelled by the API, by hand, and rescued with the worker declared dead.
    await jobCompleteManyIfRunning(sql, w1, [{
      id: one[0],
      result: 1,
      progress: null,
      logs: null,
    }]);
    const failure = { error: "x", delayMs: 0, retryable: true, progress: null, logs: null };
    await jobFailManyIfRunning(sql, w1, [{ id: one[1], ...failure }, { id: one[2], ...failure }]);
    await jobReleaseManyIfRunning(sql, w1, [one[3]]);
    await sql`update jobs.queue set status = 'cancelled', completed_at = now()
              where id = ${one[4]}`;
    await sql`update jobs.queue set status = 'pending', worker_id = null where id = ${one[5]}`;
    await sql`delete from jobs.queue where id = ${one[6]}`;
    both = await runningBothWays(sql);
    assert.deepEqual(both.counted, both.actual);
    const rescued = await workerRescueById(sql, w2, "worker lost", POLICY);
    assert.equal(rescued.length, 8);
    both = await runningBothWays(sql);
    assert.deepEqual(both.counted, both.actual);
    // w1 took all of a's jobs and two of b's; 7 of its 12 have left running.
    assert.deepEqual(both.actual.map((r) => [r.namespace, r.worker_id, r.n]), [
      ["a", w1, 3],
      ["b", w1, 2],
    ]);

    // A running row written by hand, without a worker, is counted too.
    await sql`update jobs.queue set status = 'running' where id = ${one[1]}`;
    both = await runningBothWays(sql);
    assert.deepEqual(both.counted, both.actual);
    // Jobs that became pending again are claimable again, once each.
    const again = await jobClaimAvailable(sql, w1, 100, 1000);
    const ids = again.map((j) => j.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ids.includes(one[3]) && ids.includes(one[5]) && ids.includes(one[2]));
    both = await runningBothWays(sql);
    assert.deepEqual(both.counted, both.actual);
  } finally {
    await db.drop();
  }
});

Deno.test("the layout migration gives existing pending jobs their entries and counts running ones", async () => {
  const all = await readMigrations();
  const name = `layout_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = postgres(testAdminUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const sql = postgres(urlForDatabase(testAdminUrl(), name), { max: 1, onnotice: () => {} });
  try {
    await migrate(sql, all.filter((m) => m.version < 13));
    await insertFunction(sql, { name: "f", code: "x" });
    const ids = await submitJobs(sql, "f", [1, 2, 3, 4]);
    const w = crypto.randomUUID();
    await sql`update jobs.queue set status = 'running', worker_id = ${w}
              where id in ${sql(ids.slice(0, 2))}`;
    await migrate(sql, all);

    const entries = await sql`select id from jobs.pending order by created_at, id`;
    assert.deepEqual(entries.map((e) => e.id).sort(), ids.slice(2).sort());
    const counts = await sql`select namespace, worker_id, kind, n::int from jobs.running_counts`;
    assert.deepEqual([...counts], [{ namespace: "default", worker_id: w, kind: "i", n: 2 }]);
  } finally {
    await sql.end();
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
});
