import assert from "node:assert/strict";
import { Deadlines } from "../src/isolate/deadlines.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("deadlines fire once each, in time order across delays; cancelled ones never", async () => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  deadlines.add(60, () => fired.push("a60"));
  deadlines.add(20, () => fired.push("b20"));
  const c = deadlines.add(40, () => fired.push("c40"));
  deadlines.add(20, () => fired.push("d20"));
  deadlines.add(0, () => fired.push("e0"));
  c.cancel();
  c.cancel();
  await sleep(120);
  assert.deepEqual(fired, ["e0", "b20", "d20", "a60"]);
});

Deno.test("a deadline set from a firing one works; nothing is pending once all are done", async () => {
  const deadlines = new Deadlines();
  const fired: number[] = [];
  deadlines.add(10, () => {
    fired.push(1);
    deadlines.add(10, () => fired.push(2));
  });
  await sleep(80);
  assert.deepEqual(fired, [1, 2]);
  // The test sanitizer fails the test if a timer is left pending: cancel everything.
  const many = Array.from({ length: 5000 }, (_, i) => deadlines.add(60_000 + (i % 3), () => {}));
  for (const d of many) d.cancel();
});

Deno.test("many cancelled deadlines are compacted and the live ones still fire", async () => {
  const deadlines = new Deadlines();
  let fired = 0;
  const keep = [];
  for (let i = 0; i < 10_000; i++) {
    const d = deadlines.add(30, () => fired++);
    if (i % 100 === 0) keep.push(d);
    else d.cancel();
  }
  await sleep(100);
  assert.equal(fired, keep.length);
});
