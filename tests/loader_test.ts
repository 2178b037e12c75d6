import assert from "node:assert/strict";
import { join } from "node:path";
import { loadFunctionsDir, localImports } from "../src/functions/loader.ts";

async function jobsDir(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "fluxbase-loader-test-" });
  for (const [path, source] of Object.entries(files)) {
    await Deno.mkdir(join(dir, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, path), source);
  }
  return dir;
}

Deno.test("loadFunctionsDir loads files, directories, siblings and _shared imports", async () => {
  const dir = await jobsDir({
    "hello.ts": "/** @fluxbase:timeout 5 */\nexport function handler() { return 1; }",
    "plain.js": "export default function () { return 2; }",
    "report/index.ts": `// @fluxbase:namespace reports
import { sum } from "./lib/math.ts";
import { db } from "../_shared/db.ts";
import { Cron } from "npm:croner@11.0.0";
export async function handler() { const m = await import("./lazy.ts"); return sum(1, 2) + db + m.x; }`,
    "report/lib/math.ts":
      'import { round } from "../../_shared/round.ts";\nexport const sum = (a: number, b: number) => round(a + b);',
    "report/lazy.ts": "export const x = 1;",
    "_shared/db.ts": 'export { round as db } from "./round.ts";',
    "_shared/round.ts": "export const round = Math.round;",
    "README.md": "not a function",
    "types.d.ts": "declare const x: number;",
  });
  const { functions, errors } = await loadFunctionsDir(dir);
  assert.deepEqual(errors, []);
  assert.deepEqual(functions.map((f) => [f.name, f.namespace]), [
    ["hello", "default"],
    ["plain", "default"],
    ["report", "reports"],
  ]);
  const report = functions[2];
  assert.equal(report.sourcePath, join(dir, "report/index.ts"));
  assert.match(report.code, /@fluxbase:namespace reports/);
  assert.deepEqual(Object.keys(report.files).sort(), [
    "../_shared/db.ts",
    "../_shared/round.ts",
    "./lazy.ts",
    "./lib/math.ts",
  ]);
  assert.equal(report.files["../_shared/round.ts"], "export const round = Math.round;");
  assert.equal(functions[0].annotations.timeoutSeconds, 5);
  assert.deepEqual(functions[0].files, {});
});

Deno.test("loadFunctionsDir reports a bad file and still loads the others", async () => {
  const dir = await jobsDir({
    "good.ts": "export function handler() {}",
    "bad.ts": "/**\n * @fluxbase:timeout abc\n */\nexport function handler() {}",
    "escape.ts": 'import "../outside.ts";\nexport function handler() {}',
    "missing/index.ts": 'import "./nope.ts";\nexport function handler() {}',
    "empty/lib.ts": "export const x = 1;",
    "bad name!.ts": "export function handler() {}",
  });
  const { functions, errors } = await loadFunctionsDir(dir);
  assert.deepEqual(functions.map((f) => f.name), ["good"]);
  const messages = errors.map((e) => e.message.replaceAll(dir, "<dir>")).sort();
  assert.equal(messages.length, 5);
  assert.match(messages[0], /^<dir>\/bad name!\.ts: "bad name!" is not a valid function name/);
  assert.equal(
    messages[1],
    '<dir>/bad.ts:2: @fluxbase:timeout "abc" is not a positive whole number of seconds',
  );
  assert.equal(messages[2], "<dir>/empty: directory has no index.ts or index.js");
  assert.equal(
    messages[3],
    '<dir>/escape.ts: imports "../outside.ts", which is outside the jobs directory <dir>',
  );
  assert.match(
    messages[4],
    /^<dir>\/missing\/index\.ts: imports "\.\/nope\.ts", which cannot be read/,
  );
});

Deno.test("localImports finds static, re-export, side-effect and dynamic imports only", () => {
  const code = `import a from "./a.ts";
import { b,
  c } from '../_shared/b.ts';
import "./side.ts";
export * from "./re.ts";
import type { T } from "./types.ts";
const m = await import("./dyn.ts");
import x from "npm:zod";
import y from "https://example.com/y.ts";
const s = "from './not-an-import.ts'";`;
  assert.deepEqual(localImports(code).sort(), [
    "../_shared/b.ts",
    "./a.ts",
    "./dyn.ts",
    "./re.ts",
    "./side.ts",
    "./types.ts",
  ]);
});

Deno.test("loadFunctionsDir loads the example jobs/ without errors", async () => {
  const { functions, errors } = await loadFunctionsDir("jobs");
  assert.deepEqual(errors, []);
  const names = functions.map((f) => f.name);
  for (const expected of ["process-data", "admin-report", "parallel-processing", "process-batch"]) {
    assert.ok(names.includes(expected), `jobs/${expected} is loaded`);
  }
  const admin = functions.find((f) => f.name === "admin-report")!;
  assert.deepEqual(admin.annotations.requireRoles, ["admin"]);
  assert.equal(admin.annotations.timeoutSeconds, 600);
});
