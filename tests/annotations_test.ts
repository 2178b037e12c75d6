import assert from "node:assert/strict";
import { parseAnnotations } from "../src/functions/annotations.ts";

function parseOk(code: string) {
  const result = parseAnnotations(code, "jobs/x.ts");
  if (!result.ok) throw new Error(`unexpected errors: ${result.errors.join("; ")}`);
  return result.annotations;
}

function parseErrors(code: string) {
  const result = parseAnnotations(code, "jobs/x.ts");
  assert.equal(result.ok, false, "expected the annotations to be rejected");
  return (result as { errors: string[] }).errors;
}

Deno.test("parseAnnotations reads the spec's JSDoc block", () => {
  const annotations = parseOk(`/**
 * Process user data
 * @fluxbase:timeout 300
 * @fluxbase:description Processes user-specific data items
 */
export async function handler() {}`);
  assert.deepEqual(annotations, {
    permissions: {},
    timeoutSeconds: 300,
    description: "Processes user-specific data items",
  });
});

Deno.test("parseAnnotations reads every annotation, in // lines too", () => {
  const annotations = parseOk(`// @fluxbase:namespace reports
// @fluxbase:require-role admin, dashboard_admin
// @fluxbase:timeout 1800
// @fluxbase:max-retries 0
// @fluxbase:schedule 0 2 * * *
// @fluxbase:schedule-params {"retention_days": 7}
// @fluxbase:description Nightly cleanup
// @fluxbase:progress-timeout 60
// @fluxbase:memory 256
// @fluxbase:enabled false
// @fluxbase:allow-net api.example.com, localhost:8080
// @fluxbase:allow-env
// @fluxbase:allow-read /tmp/in,/etc/hostname
// @fluxbase:allow-write
// @fluxbase:allow-run git
export function handler() {}`);
  assert.deepEqual(annotations, {
    namespace: "reports",
    requireRoles: ["admin", "dashboard_admin"],
    timeoutSeconds: 1800,
    maxRetries: 0,
    schedule: "0 2 * * *",
    scheduleParams: { retention_days: 7 },
    description: "Nightly cleanup",
    progressTimeoutSeconds: 60,
    memoryLimitMb: 256,
    enabled: false,
    permissions: {
      net: ["api.example.com", "localhost:8080"],
      env: true,
      read: ["/tmp/in", "/etc/hostname"],
      write: true,
      run: ["git"],
    },
  });
});

Deno.test("parseAnnotations returns undefined for absent annotations and grants nothing", () => {
  const annotations = parseOk("export function handler() { return 1; }");
  assert.deepEqual(annotations, { permissions: {} });
  assert.equal(annotations.timeoutSeconds, undefined);
});

Deno.test("parseAnnotations accepts a 6-field schedule with seconds and a bare enabled", () => {
  const annotations = parseOk("/** @fluxbase:enabled */\nexport function handler() {}");
  assert.equal(annotations.enabled, true);
  // "*/" would end a JSDoc block (as it does in JavaScript), so such a cron goes in a // line.
  const six = parseOk("// @fluxbase:schedule */5 * * * * *\nexport function handler() {}");
  assert.equal(six.schedule, "*/5 * * * * *");
});

Deno.test("parseAnnotations names file, line and annotation for a malformed value", () => {
  const errors = parseErrors(`/**
 * Job
 *
 * @fluxbase:timeout abc
 */`);
  assert.deepEqual(errors, [
    'jobs/x.ts:4: @fluxbase:timeout "abc" is not a positive whole number of seconds',
  ]);
});

Deno.test("parseAnnotations rejects each kind of bad value", () => {
  const cases: Array<[string, RegExp]> = [
    ["@fluxbase:timeout 0", /timeout "0" is not a positive whole number of seconds/],
    ["@fluxbase:timeout 1.5", /timeout "1.5" is not a positive whole number/],
    ["@fluxbase:max-retries -1", /max-retries "-1" is not a whole number of retries/],
    ["@fluxbase:max-retries 1000", /more than the maximum of 100 retries/],
    ["@fluxbase:schedule 61 * * * *", /schedule "61 \* \* \* \*" is not a valid cron expression/],
    ["@fluxbase:schedule * * *", /expected 5 fields, or 6 with seconds first/],
    ["@fluxbase:schedule 0 0 2 * * * 2030", /expected 5 fields/],
    ["@fluxbase:schedule-params [1,2]", /schedule-params "\[1,2\]" is not a JSON object/],
    ["@fluxbase:schedule-params {oops", /is not a JSON object/],
    ["@fluxbase:namespace bad name!", /namespace "bad name!" is not a valid namespace/],
    ["@fluxbase:require-role admin,,x", /has an invalid role ""/],
    ["@fluxbase:enabled maybe", /enabled "maybe" is not true or false/],
    [
      "@fluxbase:allow-net https://x.com",
      /allow-net "https:\/\/x.com" has "https:\/\/x.com", which is not a host/,
    ],
    ["@fluxbase:allow-env A-B", /which is not a variable name/],
    ["@fluxbase:description", /description needs a value/],
    ["@fluxbase:memory 1", /memory "1" is not a positive whole number of MB \(at least 16\)/],
    ["@fluxbase:allow-ffi", /allow-ffi is not a known annotation/],
    ["@fluxbase:timeuot 5", /timeuot is not a known annotation; known: namespace/],
  ];
  for (const [line, expected] of cases) {
    const errors = parseErrors(`// ${line}\nexport function handler() {}`);
    assert.equal(errors.length, 1, line);
    assert.match(errors[0], /^jobs\/x\.ts:1: @fluxbase:/, line);
    assert.match(errors[0], expected, line);
  }
});

Deno.test("parseAnnotations reports every problem and duplicates", () => {
  const errors = parseErrors(`// @fluxbase:timeout 10
// @fluxbase:timeout 20
// @fluxbase:max-retries x`);
  assert.deepEqual(errors, [
    "jobs/x.ts:2: @fluxbase:timeout is given twice (first on line 1)",
    'jobs/x.ts:3: @fluxbase:max-retries "x" is not a whole number of retries',
  ]);
});

Deno.test("parseAnnotations ignores @fluxbase: outside comments", () => {
  const annotations = parseOk(`const s = "@fluxbase:timeout abc";
const t = \`
@fluxbase:bogus
\`;`);
  assert.deepEqual(annotations, { permissions: {} });
});
