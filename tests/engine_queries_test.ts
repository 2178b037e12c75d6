/**
 * The engine's lifecycle statements on a real database, without an engine around them: what
 * a claim picks and in which order, the namespace limit under concurrent claims, and what a
 * completion writes.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase } from "./_helpers/db.ts";
import {
  jobClaimAvailable,
  jobCompleteManyIfRunning,
  jobProgressUpdateMany,
  jobReleaseManyIfRunning,
} from "../src/queue/job_queries.ts";
import { logInsertMany } from "../src/queue/log_queries.ts";
import { insertFunction, newWorker, submitJobs } from "./fixtures/engine/db.ts";
import type { Sql } from "../src/db/pool.ts";

Deno.test("a claim takes due jobs by priority then age, only for an active worker, and continues the log numbering", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await insertFunction(sql, { name: "f", code: "export function handler() {}" });
    // One statement each: distinct created_at, so age decides the order.
    const [low1] = await submitJobs(sql, "f", [1]);
    // An earlier attempt of low1 wrote lines 1-3, then its worker gave it back at shutdown
    // (still retry_count 0, no started_at).
    const earlier = await newWorker(sql);
    assert.deepEqual((await jobClaimAvailable(sql, earlier, 1, 100)).map((j) => j.id), [low1]);
    await logInsertMany(
      sql,
      earlier,
      [1, 2, 3].map((n) => ({
        job_id: low1,
        line_number: n,
        level: "info",
        message: "x",
        created_at: new Date().toISOString(),
      })),
    );
    assert.deepEqual(await jobReleaseManyIfRunning(sql, earlier, [low1]), [low1]);
    const [low2] = await submitJobs(sql, "f", [2]);
    const [high] = await submitJobs(sql, "f", [3], { priority: 5 });
    const [later] = await submitJobs(sql, "f", [4], { priority: 9 });
    await sql`update jobs.queue set run_after = now() + interval '1 hour' where id = ${later}`;

    const dead = await newWorker(sql);
    await sql`update jobs.workers set status = 'dead' where id = ${dead}`;
    assert.equal((await jobClaimAvailable(sql, dead, 10, 100)).length, 0);

    const me = await newWorker(sql);
    const first = await jobClaimAvailable(sql, me, 2, 100);
    // Highest priority, then the oldest; the rows come back in no particular order.
    const byId = new Map(first.map((j) => [j.id, j]));
    assert.deepEqual([...byId.keys()].sort(), [high, low1].sort());
    assert.equal(byId.get(high)!.log_lines, 0);
    assert.equal(byId.get(low1)!.log_lines, 3);
    assert.equal(byId.get(low1)!.job_name, "f");
    assert.equal(byId.get(low1)!.payload, 1);
    const second = await jobClaimAvailable(sql, me, 10, 100);
    assert.deepEqual(second.map((j) => j.id), [low2]);
    const rows = await sql`select id, status, worker_id, started_at from jobs.queue
                           where id in ${sql([high, low1, low2])}`;
    for (const r of rows) {
      assert.equal(r.status, "running");
      assert.equal(r.worker_id, me);
      assert.ok(r.started_at instanceof Date);
    }
    assert.equal((await jobClaimAvailable(sql, me, 10, 100)).length, 0);
  } finally {
    await db.drop();
  }
});

Deno.test("concurrent claims from several connections never exceed the namespace limit", async () => {
  const db = await createTestDatabase();
  const pools: Sql[] = [];
  try {
    const { sql } = db;
    for (const ns of ["a", "b"]) {
      await insertFunction(sql, { name: `f${ns}`, namespace: ns, code: "x" });
      await submitJobs(sql, `f${ns}`, Array.from({ length: 40 }, (_, i) => i));
    }
    const limit = 7;
    const claimers = Array.from({ length: 6 }, async () => {
      const pool = postgres(db.url, { max: 1, onnotice: () => {} });
      pools.push(pool);
      const me = await newWorker(pool);
      // Each claims in small batches until a claim comes back empty.
      while ((await jobClaimAvailable(pool, me, 3, limit)).length > 0);
    });
    await Promise.all(claimers);
    const counts = await sql<{ namespace: string; n: number }[]>`
      select namespace, count(*)::int as n from jobs.queue where status = 'running'
      group by namespace order by namespace`;
    assert.deepEqual([...counts], [{ namespace: "a", n: limit }, { namespace: "b", n: limit }]);
  } finally {
    for (const p of pools) await p.end();
    await db.drop();
  }
});

Deno.test("a claim that could take a namespace past its limit takes only its room", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await insertFunction(sql, { name: "f", namespace: "a", code: "x" });
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(...await submitJobs(sql, "f", [i]));
    const me = await newWorker(sql);
    assert.equal((await jobClaimAvailable(sql, me, 3, 5)).length, 3);
    // 3 running + up to 3 more would be 6 > 5: ranked, 2 taken, the oldest.
    const next = await jobClaimAvailable(sql, me, 3, 5);
    assert.deepEqual(next.map((j) => j.id).sort(), ids.slice(3, 5).sort());
    assert.equal((await jobClaimAvailable(sql, me, 3, 5)).length, 0);
    // 5 running + 3 fits a limit of 8 exactly: no ranking needed, all 3 taken.
    const last = await jobClaimAvailable(sql, me, 3, 8);
    assert.deepEqual(last.map((j) => j.id).sort(), ids.slice(5, 8).sort());
    // A limit far above what the running jobs' index can hold: not even counted.
    const more = await submitJobs(sql, "f", [8, 9]);
    const big = await jobClaimAvailable(sql, me, 5, 1_000_000);
    assert.deepEqual(big.map((j) => j.id).sort(), more.sort());
    // The largest limits and claims do not overflow the arithmetic (int4 in SQL).
    const [extreme] = await submitJobs(sql, "f", [10]);
    assert.deepEqual((await jobClaimAvailable(sql, me, 2 ** 31, 2 ** 31)).map((j) => j.id), [
      extreme,
    ]);
    assert.equal((await jobClaimAvailable(sql, me, 0, 2 ** 31)).length, 0);
  } finally {
    await db.drop();
  }
});

Deno.test("with a namespace at its limit, a claim takes other namespaces' jobs without reading its backlog", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await insertFunction(sql, { name: "fa", namespace: "a", code: "x" });
    await insertFunction(sql, { name: "fb", namespace: "b", code: "x" });
    await insertFunction(sql, { name: "fc", namespace: "c", code: "x" });
    const limit = 2;
    const me = await newWorker(sql);
    await submitJobs(sql, "fa", [1, 2]);
    assert.equal((await jobClaimAvailable(sql, me, 2, limit)).length, 2); // a is at its limit
    await submitJobs(sql, "fa", Array.from({ length: 3000 }, (_, i) => i)); // a's backlog
    const [b1] = await submitJobs(sql, "fb", [1]);
    // One statement each: distinct created_at, so age decides within c.
    const [c1] = await submitJobs(sql, "fc", [1]);
    const [c2] = await submitJobs(sql, "fc", [2]);
    const [c3] = await submitJobs(sql, "fc", [3]);
    const [b2] = await submitJobs(sql, "fb", [2], { priority: 5 });

    // In one transaction, so the statistics of this transaction count only this claim.
    const { claimed, read } = await sql.begin(async (tx) => {
      const claimed = await jobClaimAvailable(tx, me, 10, limit);
      // Index entries read from the indexes of jobs.queue and of its claimable entries
      // (jobs.pending) so far in this transaction.
      const [{ read }] = await tx<{ read: number }[]>`
        select coalesce(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0)::int as read
        from pg_index i where i.indrelid in ('jobs.queue'::regclass, 'jobs.pending'::regclass)`;
      return { claimed, read };
    });
    // b: both fit its room (2); c: its room is 2, so the oldest two; never a's.
    assert.deepEqual(claimed.map((j) => j.id).sort(), [b1, b2, c1, c2].sort());
    assert.ok(read < 200, `the claim read ${read} index entries (a's backlog is 3,000)`);
    const [{ n }] = await sql<{ n: number }[]>`
      select count(*)::int as n from jobs.queue where id = ${c3} and status = 'pending'`;
    assert.equal(n, 1);
  } finally {
    await db.drop();
  }
});

Deno.test("a completion and a progress update read their own rows by key, not the worker's other running jobs", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await insertFunction(sql, { name: "f", code: "x" });
    await submitJobs(sql, "f", Array.from({ length: 500 }, (_, i) => i));
    const me = await newWorker(sql);
    const running = await jobClaimAvailable(sql, me, 500, 1000);
    assert.equal(running.length, 500);
    const [a, b, c, d] = running.map((j) => j.id);
    // In one transaction, whose statistics count only its own statements; the first calls of
    // a connection plan their statements, which may probe indexes, so they are not counted.
    const { done, read } = await sql.begin(async (tx) => {
      const readSoFar = async () =>
        (await tx<{ read: number }[]>`
          select coalesce(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0)::int as read
          from pg_index i where i.indrelid = 'jobs.queue'::regclass`)[0].read;
      await jobProgressUpdateMany(tx, me, [{ id: c, progress: { percent: 1 } }]);
      await jobCompleteManyIfRunning(tx, me, [{ id: d, result: 0, progress: null, logs: null }]);
      const before = await readSoFar();
      await jobProgressUpdateMany(tx, me, [{ id: a, progress: { percent: 10 } }]);
      const done = await jobCompleteManyIfRunning(tx, me, [
        { id: a, result: 1, progress: null, logs: null },
        { id: b, result: 2, progress: { percent: 100 }, logs: "x\n" },
      ]);
      return { done, read: (await readSoFar()) - before };
    });
    assert.equal(done, 2);
    assert.ok(read < 20, `they read ${read} index entries (the worker runs 500 jobs)`);
    // And they keep one plan, instead of planning small batches again on every call.
    const configs = await sql<{ name: string; config: string[] }[]>`
      select proname as name, proconfig as config from pg_proc
      where pronamespace = 'jobs'::regnamespace and proname in ('complete_jobs', 'progress_jobs')`;
    assert.equal(configs.length, 2);
    for (const c of configs) {
      assert.ok(c.config.includes("plan_cache_mode=force_generic_plan"), c.name);
    }
    const rows = await sql`select id, result, progress, logs from jobs.queue
                           where id in (${a}, ${b}) order by result`;
    assert.deepEqual(rows.map((r) => [r.id, r.result, r.progress, r.logs]), [
      [a, 1, { percent: 10 }, null],
      [b, 2, { percent: 100 }, "x\n"],
    ]);
  } finally {
    await db.drop();
  }
});

Deno.test("a job cancelled while a claim runs is not claimed, and the claim takes the others", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  const canceller = postgres(db.url, { max: 1, onnotice: () => {} });
  const claimer = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await insertFunction(sql, { name: "f", code: "x" });
    // The claim would take `first` before the others.
    const [first] = await submitJobs(sql, "f", [0], { priority: 5 });
    const others = await submitJobs(sql, "f", [1, 2]);
    const me = await newWorker(sql);

    // The API's cancel, held open: the row is changed but not committed.
    let holding!: () => void;
    const held = new Promise<void>((r) => holding = r);
    let commit!: () => void;
    const committing = new Promise<void>((r) => commit = r);
    const cancel = canceller.begin(async (tx) => {
      await tx`update jobs.queue set status = 'cancelled', completed_at = now(),
                 updated_at = now()
               where id = ${first} and status in ('pending', 'running')`;
      holding();
      await committing;
    });
    await held;

    const [{ pid }] = await claimer<{ pid: number }[]>`select pg_backend_pid() as pid`;
    let settled = false;
    const claim = jobClaimAvailable(claimer, me, 10, 100).finally(() => settled = true);
    // The claim either returns without the row (it skips a row being changed) or waits for
    // the cancel: commit once it has done one or the other.
    for (let i = 0; !settled && i < 500; i++) {
      const [a] = await sql`select wait_event_type from pg_stat_activity where pid = ${pid}`;
      if (a?.wait_event_type === "Lock") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    commit();
    await cancel;
    const claimed = await claim;

    assert.deepEqual(claimed.map((j) => j.id).sort(), [...others].sort());
    const [row] = await sql`select status, worker_id, started_at from jobs.queue
                            where id = ${first}`;
    assert.equal(row.status, "cancelled");
    assert.equal(row.worker_id, null);
    assert.equal(row.started_at, null);
    assert.equal((await jobClaimAvailable(sql, me, 10, 100)).length, 0);
  } finally {
    await canceller.end();
    await claimer.end();
    await db.drop();
  }
});

Deno.test("a completion writes result, progress and logs of its own running jobs only", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  try {
    await insertFunction(sql, { name: "f", code: "x" });
    const ids: string[] = [];
    for (const p of [1, 2, 3, 4]) ids.push(...await submitJobs(sql, "f", [p]));
    const me = await newWorker(sql);
    const other = await newWorker(sql);
    await jobClaimAvailable(sql, me, 3, 100);
    const [theirs] = (await jobClaimAvailable(sql, other, 1, 100)).map((j) => j.id);
    assert.equal(theirs, ids[3]);
    const [a, b, c] = ids;
    await jobProgressUpdateMany(sql, me, [{
      id: c,
      progress: { percent: 50, message: 'half "way"' },
    }]);
    await sql`update jobs.queue set logs = 'earlier\n' where id = ${b}`;

    const tricky = {
      s: 'quote " backslash \\ brace } comma , null',
      u: "ünï 🙂",
      n: [1, null, {}],
    };
    const done = await jobCompleteManyIfRunning(sql, me, [
      { id: a, result: tricky, progress: { percent: 100, message: "" }, logs: "line\n" },
      { id: b, result: "NULL", progress: null, logs: "more\n" },
      { id: c, result: undefined, progress: null, logs: null },
      { id: theirs, result: 1, progress: null, logs: null },
    ]);
    assert.equal(done, 3, "the other worker's job is not counted");
    const rows = new Map(
      (await sql`select id, status, result, progress, logs, last_progress_at from jobs.queue`)
        .map((r) => [r.id, r]),
    );
    assert.equal(rows.get(a)!.status, "completed");
    assert.deepEqual(rows.get(a)!.result, tricky);
    assert.deepEqual(rows.get(a)!.progress, { percent: 100, message: "" });
    assert.equal(rows.get(a)!.logs, "line\n");
    assert.equal(rows.get(b)!.result, "NULL");
    assert.deepEqual(rows.get(b)!.progress, { percent: 0, message: "" });
    assert.equal(rows.get(b)!.logs, "earlier\nmore\n");
    assert.equal(rows.get(c)!.result, null);
    assert.deepEqual(rows.get(c)!.progress, { percent: 50, message: 'half "way"' });
    assert.equal(rows.get(c)!.logs, null);
    assert.equal(rows.get(theirs)!.status, "running");
  } finally {
    await db.drop();
  }
});

Deno.test("declaring a worker dead waits for its claim in flight, and its next claim takes nothing", async () => {
  const db = await createTestDatabase();
  const { sql } = db;
  const claimer = postgres(db.url, { max: 1, onnotice: () => {} });
  const rescuer = postgres(db.url, { max: 1, onnotice: () => {} });
  let commit: (() => void) | undefined;
  try {
    await insertFunction(sql, { name: "f", code: "x" });
    const [a, b] = await submitJobs(sql, "f", [1, 2]);
    const me = await newWorker(sql);
    const committing = new Promise<void>((r) => commit = r);
    let claimed!: (ids: string[]) => void;
    const claimedIds = new Promise<string[]>((r) => claimed = r);
    // A claim whose transaction is still open.
    const claim = claimer.begin(async (tx) => {
      claimed((await jobClaimAvailable(tx, me, 1, 100)).map((j) => j.id));
      await committing;
    });
    assert.equal((await claimedIds).length, 1);
    const [{ pid }] = await rescuer<{ pid: number }[]>`select pg_backend_pid() as pid`;
    let declared = false;
    const dead = rescuer`update jobs.workers set status = 'dead' where id = ${me}`
      .then(() => declared = true);
    let waiting = false;
    for (let i = 0; i < 500 && !waiting; i++) {
      const [s] = await sql`select wait_event_type from pg_stat_activity where pid = ${pid}`;
      waiting = s?.wait_event_type === "Lock";
      if (!waiting) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(waiting, "declaring the worker dead waits for the claim");
    assert.equal(declared, false);
    commit!();
    await claim;
    await dead;
    assert.equal((await jobClaimAvailable(sql, me, 10, 100)).length, 0);
    const rows = await sql`select id, status from jobs.queue where id in ${sql([a, b])}`;
    assert.equal(rows.filter((r) => r.status === "pending").length, 1);
  } finally {
    commit?.();
    await claimer.end();
    await rescuer.end();
    await db.drop();
  }
});
