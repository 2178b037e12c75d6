import assert from "node:assert/strict";
import { FilterError, parseFilter, parseTime } from "../src/realtime/filters.ts";
import { JOBS_QUEUE } from "../src/realtime/tables.ts";
import { createTestDatabase } from "./_helpers/db.ts";
import { sleep, startHub } from "./fixtures/realtime/harness.ts";

const row = {
  id: "6A7B0C1D-0000-4000-8000-000000000001".toLowerCase(),
  status: "running",
  job_name: "Process_Data",
  priority: 10,
  retry_count: 0,
  error_message: null,
  created_at: "2024-05-01T10:00:00.123456+00:00",
  progress: { percent: 5 },
};

const cases: [string, boolean][] = [
  ["status=eq.running", true],
  ["status=eq.pending", false],
  ["status=neq.pending", true],
  ["status=neq.running", false],
  // Numbers compare as numbers: "10" > "9" is false as text, true as integers.
  ["priority=gt.9", true],
  ["priority=gt.10", false],
  ["priority=gte.10", true],
  ["priority=lt.10", false],
  ["priority=lt.100", true],
  ["priority=lte.10", true],
  ["priority=eq.10.0", true],
  ["status=in.(pending,running)", true],
  ['status=in.("completed","failed")', false],
  ["priority=in.(1,10)", true],
  ["error_message=is.null", true],
  ["status=is.null", false],
  ["error_message=eq.x", false],
  ["error_message=neq.x", false],
  ["job_name=like.Process%", true],
  ["job_name=like.process%", false],
  ["job_name=like.*_Data", true],
  ["job_name=ilike.process_data", true],
  ["job_name=ilike.%DATA", true],
  // Timestamps compare as instants, to the microsecond, whatever the offset.
  ["created_at=gt.2024-05-01T10:00:00.123455Z", true],
  ["created_at=gt.2024-05-01T10:00:00.123456Z", false],
  ["created_at=eq.2024-05-01T12:00:00.123456+02:00", true],
  ["created_at=lt.2024-05-02", true],
  ["id=eq.6a7b0c1d-0000-4000-8000-000000000001", true],
  ["id=eq.6A7B0C1D-0000-4000-8000-000000000001", true],
  ["progress=is.null", false],
];

Deno.test("filters: each operator, compared by column type", async (t) => {
  for (const [source, expected] of cases) {
    await t.step(`${source} -> ${expected}`, () => {
      assert.equal(parseFilter(source, JOBS_QUEUE).test(row), expected);
    });
  }
});

Deno.test("filters: invalid filters are refused with a reason", () => {
  const bad: [string, RegExp][] = [
    ["status", /expected column=operator.value/],
    ["nope=eq.1", /has no column "nope"/],
    ["status=foo.1", /unknown operator "foo"/],
    ["priority=eq.ten", /"ten" is not a number/],
    ["created_at=gt.yesterday", /"yesterday" is not a timestamp/],
    ["status=is.maybe", /"is" takes null, true or false/],
    ["status=is.true", /needs a boolean column/],
    ["priority=like.1%", /needs a text column/],
    ["progress=eq.1", /jsonb/],
    ["status=in.pending", /takes a list/],
  ];
  for (const [source, message] of bad) {
    assert.throws(() => parseFilter(source, JOBS_QUEUE), (e: Error) => {
      assert.ok(e instanceof FilterError, source);
      assert.match(e.message, message, source);
      return true;
    });
  }
});

Deno.test("filters: parseTime keeps microseconds", () => {
  assert.equal(parseTime("1970-01-01T00:00:00.000001+00:00"), 1);
  assert.equal(parseTime("1970-01-01 00:00:01+00"), 1_000_000);
  assert.equal(parseTime("not a time"), null);
});

Deno.test(
  "filters over a socket: each subscription gets only its matching rows",
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    const db = await createTestDatabase();
    const h = await startHub({ sql: db.sql, databaseUrl: db.url });
    try {
      const ws = await h.connect(await h.token({ sub: "alice" }));
      const filters = [
        "status=eq.running",
        "status=neq.running",
        "priority=gt.5",
        "priority=gte.5",
        "priority=lt.5",
        "priority=lte.5",
        "job_name=in.(a,c)",
        "error_message=is.null",
        "job_name=like.a%",
        "job_name=ilike.B",
        "created_at=gte.2000-01-01T00:00:00Z",
      ];
      const subs = new Map<string, string>();
      for (const filter of filters) {
        const id = await ws.subscribe("jobs", {
          event: "INSERT",
          schema: "jobs",
          table: "queue",
          filter,
        });
        subs.set(id, filter);
      }
      await db.sql`
      insert into jobs.queue (job_name, status, priority, error_message, created_by) values
        ('a', 'running', 1, null, 'alice'),
        ('b', 'pending', 5, 'x', 'alice'),
        ('c', 'running', 9, null, 'alice')`;
      // The last subscription matches every row: 3 events for it means all were fanned out.
      let seen = 0;
      while (seen < 3) {
        await ws.next((m) =>
          m.type === "postgres_changes" &&
          subs.get(m.payload.subscription_id) === "created_at=gte.2000-01-01T00:00:00Z"
        );
        seen++;
      }
      await sleep(100);
      const got: Record<string, string[]> = {};
      for (const m of ws.drain()) {
        const f = subs.get(m.payload.subscription_id)!;
        (got[f] ??= []).push(m.payload.record.job_name);
      }
      for (const v of Object.values(got)) v.sort();
      assert.deepEqual(got, {
        "status=eq.running": ["a", "c"],
        "status=neq.running": ["b"],
        "priority=gt.5": ["c"],
        "priority=gte.5": ["b", "c"],
        "priority=lt.5": ["a"],
        "priority=lte.5": ["a", "b"],
        "job_name=in.(a,c)": ["a", "c"],
        "error_message=is.null": ["a", "c"],
        "job_name=like.a%": ["a"],
        "job_name=ilike.B": ["b"],
      });
    } finally {
      await h.stop();
      await db.drop();
    }
  },
);
